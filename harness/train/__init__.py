"""Training: input normalisation (``normalise``), what is learnt (``objective``), the one training loop
(``loop``), pretraining strategies (``strategies``), augmentation, atomic checkpoints; ``rules`` holds what
expand checks, torch-free."""
