"""Training: input normalisation, the one training loop, atomic checkpoints."""

from harness.train.checkpoint import load, save_atomic
from harness.train.loop import TrainConfig, TrainResult, evaluate, load_weights, seed_everything, train
from harness.train.normalise import make_inputs, make_targets

__all__ = [
    "TrainConfig",
    "TrainResult",
    "evaluate",
    "load",
    "load_weights",
    "make_inputs",
    "make_targets",
    "save_atomic",
    "seed_everything",
    "train",
]
