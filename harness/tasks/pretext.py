"""Pretext tasks on trajectories, with the meanings of Zhou et al. (2024) and their public code.

Every pretext view takes a window of ``window`` consecutive frames at a random start of each trajectory (as the
paper pretrains on random windows) and never reads a frame outside it: the targets come from the inputs
(self-supervised) or, for coefficient regression, from the equation's coefficients. The model is the task's
FNO (``window`` frame channels and the data's coefficient channels in: the five of heat, advection and Burgers,
or navier_stokes' two), with its own head; fine-tuning drops the head (``head.``) and keeps the trunk and the
lifting.

- ``masked``: ``mask_ratio`` of the spatio-temporal patches (``MASK_FRAMES`` frames by (R / ``mask_patches``)^2
  points) are zeroed in the window's frames (the coefficient channels are left: they are no field to
  rebuild); the model rebuilds the window. L1 loss on the masked points, metric as the steady task's.
- ``derivative``: the window's first frame's u_t, u_x, u_y, u_xx, u_yy by finite differences of the frames
  themselves (second order: periodic central differences in space, the one-sided three-frame difference in
  time), from the window. Loss and metric: relative L2 per derivative, averaged (they differ in scale by
  orders of magnitude).
- ``coefficient``: the coefficients / their scales from the window, its coefficient channels zeroed
  (they hold the answer). Pooled head; MSE loss, relative L2 metric of the coefficient vector.
- ``sort_time``: the window is cut into ``SORT_CHUNKS`` chunks of frames, shuffled by one of their 4! = 24
  orders, and the model classifies which (Misra et al.'s sequence sorting, as the paper's temporal patches).
  Pooled head of 24 logits; cross-entropy loss; metric: the cross-entropy / ln 24 (1 at chance, 0 when sure
  and right: smooth, so the best checkpoint is chosen as the loss would choose it).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from harness.errors import HarnessError
from harness.models.fno import FNO
from harness.pde import TIME_COEFS
from harness.tasks import MASK_FRAMES, SORT_CHUNKS
from harness.tasks.trajectories import Trajectories
from harness.train import masked_patches
from harness.train.strategies import Coefficient, Derivative, Masked, PooledHead, patch_mask

ORDERS = torch.tensor(list(itertools.permutations(range(SORT_CHUNKS))))  # sort_time's classes


class TimeMasked(Trajectories):
    """Masked reconstruction of the window; see the module docstring."""

    name = "masked"
    loss = Masked.loss
    metric = Masked.metric

    def __init__(self, window: int, times: Sequence[float], ratio: float, patches: int,
                 channels: tuple[str, ...] = TIME_COEFS) -> None:
        super().__init__(window, times, channels=channels)
        self.out_channels, self.patches = window, patches
        self.n_masked = masked_patches(ratio, patches, window // MASK_FRAMES)

    def view(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Input: the window with its masked patches zeroed, and the coefficients; target: (window, mask)."""
        frames = self.random_window(x, self.window, generator)
        mask = patch_mask(frames, MASK_FRAMES, self.patches, self.n_masked, generator)
        return self.inputs(frames * (1 - mask), y), torch.cat([frames, mask], dim=1)


def finite_differences(frames: torch.Tensor, dt: float) -> torch.Tensor:
    """(u_t, u_x, u_y, u_xx, u_yy) of the first of ``frames`` (B, >= 3, R, R) on the periodic unit square,
    frames ``dt`` apart, as channels (B, 5, R, R); all second-order accurate."""
    u0, u1, u2 = frames[:, 0], frames[:, 1], frames[:, 2]
    h = 1.0 / u0.shape[-1]

    def shifted(axis: int) -> tuple[torch.Tensor, torch.Tensor]:  # u(x + h), u(x - h) along an axis
        return u0.roll(-1, dims=axis), u0.roll(1, dims=axis)

    (xp, xm), (yp, ym) = shifted(-2), shifted(-1)
    u_t = (-3 * u0 + 4 * u1 - u2) / (2 * dt)
    return torch.stack([u_t, (xp - xm) / (2 * h), (yp - ym) / (2 * h), (xp - 2 * u0 + xm) / h**2,
                        (yp - 2 * u0 + ym) / h**2], dim=1)


class TimeDerivative(Trajectories):
    """Derivatives of the window's first frame from the window; see the module docstring."""

    name = "derivative"
    out_channels = 5
    loss = Derivative.loss
    metric = Derivative.metric

    def view(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Input: the window and the coefficients; target: ``finite_differences`` of the window."""
        frames = self.random_window(x, self.window, generator)
        return self.inputs(frames, y), finite_differences(frames, float(self.times[1] - self.times[0]))


class Pooled(Trajectories):
    """A pretext task predicting one vector per sample: the FNO's head is a ``PooledHead``."""

    def build_model(self, width: int, modes: int) -> FNO:
        """The task's FNO with a ``PooledHead`` of ``out_channels`` outputs."""
        model = super().build_model(width, modes)
        model.head = PooledHead(width, self.out_channels)
        return model


class TimeCoefficient(Pooled):
    """Regression of the coefficients from the window; see the module docstring."""

    name = "coefficient"
    loss = Coefficient.loss
    metric = Coefficient.metric

    def __init__(self, window: int, times: Sequence[float], channels: tuple[str, ...] = TIME_COEFS) -> None:
        super().__init__(window, times, channels=channels)
        self.out_channels = len(channels)

    def view(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Input: the window with zero coefficient channels; target: the coefficients / their scales (B, C)."""
        frames = self.random_window(x, self.window, generator)
        return self.inputs(frames, torch.zeros_like(y)), self.scaled(y)


class SortTime(Pooled):
    """Which order the window's chunks of frames were shuffled into; see the module docstring."""

    name = "sort_time"
    out_channels = len(ORDERS)

    def view(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Input: the window, its chunks in a random order, and the coefficients; target: the order's index."""
        frames = self.random_window(x, self.window, generator)
        label = torch.randint(0, len(ORDERS), (x.shape[0],), generator=generator, device=x.device)
        size = self.window // SORT_CHUNKS
        order = (ORDERS.to(x.device)[label][:, :, None] * size + torch.arange(size, device=x.device)).flatten(1)
        return self.inputs(frames.gather(1, order[:, :, None, None].expand_as(frames)), y), label

    def loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the logits (B, 24) against the order's index."""
        return F.cross_entropy(pred, target)

    def metric(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per sample: the cross-entropy over that of a uniform guess, ln 24."""
        return F.cross_entropy(pred, target, reduction="none") / math.log(len(ORDERS))


def make_pretext(pretrain: dict[str, Any], window: int, times: Sequence[float],
                 channels: tuple[str, ...] = TIME_COEFS) -> Trajectories:
    """The pretext strategy of a job's ``pretrain`` settings on windows of ``window`` frames at ``times``, its
    model taking the coefficient ``channels``."""
    name = pretrain["strategy"]
    if name == "masked":
        return TimeMasked(window, times, pretrain["mask_ratio"], pretrain["mask_patches"], channels)
    kinds = {"derivative": TimeDerivative, "coefficient": TimeCoefficient, "sort_time": SortTime}
    if name not in kinds:
        raise HarnessError(f"pretrain.strategy {name!r} is no pretext task on trajectories (`none` is training from "
                           f"scratch, supervised the task itself); pretext tasks: masked, {', '.join(kinds)}")
    return kinds[name](window, times, channels=channels)
