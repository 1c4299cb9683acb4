"""What the training loop learns: an ``Objective`` views a batch (x, y) as (model input, target), has a loss
to minimise and a per-sample metric to validate with; the base class is supervised learning of y with the
losses a sweep chooses (``train.loss``). The pretraining strategies (``harness.train.strategies``) and the
time-dependent tasks (``harness.tasks``) subclass it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from harness.errors import HarnessError
from harness.job import TrainConfig
from harness.train.steady_augment import Augment, make_augment


def sum_squared_error(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Training loss: squared error summed over each sample's grid, averaged over the batch."""
    return (pred - y).square().flatten(1).sum(dim=1).mean()


def mean_squared_error(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Squared error averaged over every grid point and sample."""
    return (pred - y).square().mean()


def relative_l2(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-sample relative L2 error ``||pred - y|| / ||y||``, shape (batch,)."""
    return (pred - y).flatten(1).norm(dim=1) / y.flatten(1).norm(dim=1)


# The supervised losses a sweep chooses with `train.loss` (harness.job.LOSSES), each a batch mean.
LOSS_FUNCTIONS = {"sse": sum_squared_error, "mse": mean_squared_error,
                  "rel_l2": lambda pred, y: relative_l2(pred, y).mean()}


class Objective:
    """What ``train`` minimises and ``evaluate`` scores; this base class is supervised learning of u.

    A batch (x, y) of inputs and solutions becomes the model's (input, target) through ``view`` (the
    identity here), then ``loss(pred, target)`` (a scalar, mean over the batch) is minimised and
    ``metric(pred, target)`` (one value per sample, lower is better) is the validation error.
    """

    name = "supervised"
    fields = True  # the target is a solution field, scored by every metric of harness.train.metrics at test

    def __init__(self, loss: str = "sse") -> None:
        if loss not in LOSS_FUNCTIONS:
            raise HarnessError(f"loss must be one of {tuple(LOSS_FUNCTIONS)}, but got {loss!r}")
        self.loss_name = loss

    def view(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """The (model input, target) of a batch; random parts draw from ``generator``."""
        return x, y

    def train_view(self, forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor,
                   generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """The (model input, target) of a training batch: ``view`` here; ``forward`` (the model being trained)
        is for views that run it without gradients, such as pushforward unrolling."""
        return self.view(x, y, generator)

    def augmentation(self, cfg: TrainConfig) -> Augment | None:
        """The augmentation ``cfg.augment`` names, for this objective's batches: (input, solution) pairs of the
        steady systems here (``harness.train.steady_augment``); None for ``none``."""
        return make_augment(cfg.augment, prob=cfg.augment_prob, noise_level=cfg.noise_level, scale_max=cfg.scale_max)

    def loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Training loss of a batch (``loss_name``: sum of squared errors per sample by default), averaged."""
        return LOSS_FUNCTIONS[self.loss_name](pred, target)

    def metric(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per-sample validation error, shape (batch,): relative L2."""
        return relative_l2(pred, target)


SUPERVISED = Objective()
