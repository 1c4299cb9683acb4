"""Pretraining strategies of Zhou et al. (2024): supervised transfer and four pretext tasks on steady inputs.

Every strategy is an ``Objective`` of the one training loop: it views the same batches of (normalised input
x (B, 7, R, R), solution u (B, 1, R, R)) -- after augmentation, so an augmented pair gives consistent
pretext inputs and targets -- as its own (model input, target):

- ``supervised``: the solution u from x (sum of squared errors; relative L2). Fine-tuning loads all weights.
- ``masked``: a fraction ``mask_ratio`` of ``mask_patches`` x ``mask_patches`` square patches is zeroed in
  every input channel; the model rebuilds the source channel. Loss: L1 on the masked patches only; metric:
  L1 error on the masked patches relative to the whole source's L1 norm. Target = (source, mask) channels.
- ``derivative``: du/dx, du/dy, d2u/dx2, d2u/dy2, d2u/dxdy of the solution, computed spectrally, from x
  (5 output channels). Loss and metric: relative L2 per channel, averaged over the channels.
- ``coefficient``: the 6 common coefficient channels from the source and the solution. The input is the
  two channels (source channel of x, u): x's coefficient channels are the answer, so they cannot be input.
  The target is x's coefficient channels, k / s_i / c (instance scale s_i, median channel scale c), which
  are exactly the coefficients of the operator that maps u to the normalised source, so they are
  recoverable from that input; channels a system lacks are 0 and are learnt as 0. Pooled head (global
  average of the trunk features -> Linear -> 6). Loss: MSE; metric: relative L2 of the coefficient vector.
- ``sort_space``: the input grid is cut into ``SORT_TILES`` x ``SORT_TILES`` tiles (every channel together),
  the tiles are shuffled by one of their 4! = 24 orders, and the model classifies which (the paper's
  ``Sort`` in spatial mode: its 16-point patches of a 32-point grid). Pooled head of 24 logits; cross-entropy;
  metric the cross-entropy over ln 24 (``Classify``). The coefficient channels are constant fields: shuffling
  leaves them, and they do not tell the order.

The pretext tasks train their own head (``head.``) on the shared trunk of the job's model (any family:
``harness.models``); fine-tuning drops the head, and for ``coefficient`` also the lifting (its input has 2
channels, the downstream input 7): the summary's ``transferred`` column then reads ``pointwise,spectral`` for an
FNO (the trunk's top-level modules). The ``none`` strategy is training from scratch
(``harness.sweep.expand`` turns it into a scratch job): it has no pretraining.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

from harness.errors import HarnessError
from harness.job import Pretrain
from harness.models import ModelKeys
from harness.models.build import model_of
from harness.models.operator import Operator
from harness.pde import COMMON_CHANNELS
from harness.pde.fourier import spectral_grad, spectral_hessian
from harness.train import (
    COEFFICIENT_IN_CHANNELS,
    DERIVATIVE_OUTPUTS,
    SORT_TILES,
    STEADY_IN_CHANNELS,
    TIME_ONLY_STRATEGIES,
    check_patch_grid,
    masked_patches,
)
from harness.train import STRATEGIES as NAMES
from harness.train.objective import Objective, relative_l2


class Pretraining(Objective):
    """A pretraining strategy: its objective plus the model it trains and what fine-tuning keeps of it."""

    in_channels = STEADY_IN_CHANNELS
    out_channels = 1
    dropped: tuple[str, ...] = ("head.",)  # weight-name prefixes that fine-tuning does not load
    fields = False  # a pretext target is no solution field: its test is its own metric only

    def build_model(self, model: ModelKeys, resolution: int) -> Operator:
        """The model this strategy trains: a job config's ``model`` (family and sizes: the shared trunk) on its
        ``resolution`` grid, with the strategy's own input channels and head."""
        return model_of(model, in_channels=self.in_channels, out_channels=self.out_channels, resolution=resolution)


class Supervised(Pretraining):
    """Transfer learning: the pretraining target is the solution; fine-tuning loads every weight."""

    dropped = ()
    fields = True


def patch_mask(fields: torch.Tensor, frames: int, patches: int, n_masked: int,
               generator: torch.Generator) -> torch.Tensor:
    """A float mask shaped like ``fields`` (B, T, H, W), 1 on exactly ``n_masked`` of each sample's patches:
    blocks of ``frames`` consecutive channels by (H / patches) x (W / patches) grid points, drawn at random."""
    b, t, h, w = fields.shape
    check_patch_grid(patches, h, w)
    scores = torch.rand(b, t // frames * patches * patches, generator=generator, device=fields.device)
    masked = scores.argsort(dim=1).argsort(dim=1) < n_masked  # rank below n_masked: exactly n_masked
    grid = masked.to(fields.dtype).reshape(b, t // frames, patches, patches)
    return grid.repeat_interleave(frames, 1).repeat_interleave(h // patches, 2).repeat_interleave(w // patches, 3)


class Masked(Pretraining):
    """Masked reconstruction of the source channel; see the module docstring."""

    name = "masked"

    def __init__(self, ratio: float = 0.75, patches: int = 8) -> None:
        self.ratio, self.patches, self.n_masked = ratio, patches, masked_patches(ratio, patches)

    def mask(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """(B, 1, H, W) float mask, 1 on exactly ``n_masked`` of the patches of each sample, drawn at random."""
        return patch_mask(x[:, :1], 1, self.patches, self.n_masked, generator)

    def view(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Input: x with the masked patches zeroed; target: (source channel, mask)."""
        mask = self.mask(x, generator)
        return x * (1 - mask), torch.cat([x[:, :1], mask], dim=1)

    def loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean absolute error over the masked grid points of the batch (target: the fields, then their mask)."""
        field, mask = target.chunk(2, dim=1)
        return ((pred - field).abs() * mask).sum() / mask.sum()

    def metric(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per sample: L1 norm of the error on the masked patches / L1 norm of the whole source (an L1
        metric like the loss, so the best checkpoint is the best reconstruction in the loss's sense)."""
        field, mask = target.chunk(2, dim=1)
        return ((pred - field).abs() * mask).flatten(1).sum(dim=1) / field.abs().flatten(1).sum(dim=1)


def derivatives(u: torch.Tensor) -> torch.Tensor:
    """(du/dx, du/dy, d2u/dx2, d2u/dy2, d2u/dxdy) of fields u (B, 1, H, W) as channels (B, 5, H, W)."""
    field = u[:, 0]
    return torch.stack([*spectral_grad(field), *spectral_hessian(field)], dim=1)


class Derivative(Pretraining):
    """Prediction of the solution's spectral first and second derivatives; see the module docstring."""

    name = "derivative"
    out_channels = DERIVATIVE_OUTPUTS

    def view(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Input: x; target: the 5 derivative channels of the solution."""
        return x, derivatives(y)

    def loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean over the batch of ``metric``."""
        return self.metric(pred, target).mean()

    def metric(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per sample: relative L2 error of each derivative channel, averaged over the channels."""
        return ((pred - target).flatten(2).norm(dim=2) / target.flatten(2).norm(dim=2)).mean(dim=1)


class PooledHead(nn.Module):
    """Global average pool of the trunk features (B, F, H, W) -> Linear -> (B, out_channels); F is the model's
    ``feature_channels`` (any family's)."""

    def __init__(self, features: int, out_channels: int) -> None:
        super().__init__()
        self.linear = nn.Linear(features, out_channels)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """(B, F, H, W) -> (B, out_channels)."""
        return self.linear(h.mean(dim=(-2, -1)))


class Pooled(Pretraining):
    """A pretext task predicting one vector per sample: the model's head is a ``PooledHead`` on its features."""

    def build_model(self, model: ModelKeys, resolution: int) -> Operator:
        """The strategy's model (any family) with a ``PooledHead`` of ``out_channels`` outputs on its features."""
        module = super().build_model(model, resolution)
        module.head = PooledHead(module.feature_channels, self.out_channels)
        return module


class Coefficient(Pooled):
    """Regression of the PDE coefficients from source and solution; see the module docstring."""

    name = "coefficient"
    in_channels = COEFFICIENT_IN_CHANNELS
    out_channels = len(COMMON_CHANNELS)
    dropped = ("head.", "lifting.")

    def view(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Input: (source channel, solution); target: the coefficient channels' values (B, 6)."""
        return torch.cat([x[:, :1], y.to(x.dtype)], dim=1), x[:, 1:, 0, 0]

    def loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean squared error over samples and channels."""
        return (pred - target).square().mean()

    def metric(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per sample: relative L2 error of the coefficient vector."""
        return relative_l2(pred, target)


@lru_cache(maxsize=8)
def permutations(pieces: int) -> torch.Tensor:
    """Every order of ``pieces`` pieces, (pieces!, pieces) int64, in lexicographic order (the identity first)."""
    return torch.tensor(list(itertools.permutations(range(pieces))))


def shuffle_pieces(fields: torch.Tensor, blocks: int, tiles: int, order: torch.Tensor) -> torch.Tensor:
    """``fields`` (B, T, H, W) cut into pieces of T / ``blocks`` consecutive channels by a ``tiles`` x ``tiles``
    grid of tiles (piece index = (block, tile row, tile column), row-major), reassembled so that piece k of
    sample b is its piece ``order[b, k]`` (``order`` (B, blocks tiles^2) int64)."""
    b, t, h, w = fields.shape
    shape = (b, blocks, t // blocks, tiles, h // tiles, tiles, w // tiles)
    pieces = fields.reshape(shape).permute(0, 1, 3, 5, 2, 4, 6).reshape(b, blocks * tiles * tiles, -1)
    pieces = pieces.gather(1, order[:, :, None].expand_as(pieces))
    moved = (b, blocks, tiles, tiles, t // blocks, h // tiles, w // tiles)
    return pieces.reshape(moved).permute(0, 1, 4, 2, 5, 3, 6).reshape(b, t, h, w)


class Classify:
    """A classification pretext: logits (B, classes) against class indices (B,); mixed into an objective."""

    out_channels: int

    def loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the logits against the class."""
        return F.cross_entropy(pred, target)

    def metric(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per sample: the cross-entropy over that of a uniform guess, ln(classes) (1 at chance, 0 when sure and
        right: smooth, so the best checkpoint is chosen as the loss would choose it)."""
        return F.cross_entropy(pred, target, reduction="none") / math.log(self.out_channels)


class SortSpace(Classify, Pooled):
    """Which order the input's tiles were shuffled into; see the module docstring."""

    name = "sort_space"
    out_channels = math.factorial(SORT_TILES * SORT_TILES)

    def view(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Input: x with its tiles in a random order; target: the order's index."""
        orders = permutations(SORT_TILES * SORT_TILES).to(x.device)
        label = torch.randint(0, len(orders), (x.shape[0],), generator=generator, device=x.device)
        return shuffle_pieces(x, 1, SORT_TILES, orders[label]), label


STEADY = tuple(name for name in NAMES if name not in TIME_ONLY_STRATEGIES)
STRATEGIES: dict[str, type[Pretraining]] = dict(zip(STEADY, (Supervised, Masked, Derivative, Coefficient, SortSpace),
                                                    strict=True))


def transferred_modules(names: Iterable[str]) -> str:
    """The summary's `transferred` value: the top-level modules of the weight names fine-tuning loaded, sorted
    and comma-separated ("" when none)."""
    return ",".join(sorted({name.split(".")[0] for name in names}))


def make_strategy(pretrain: Pretrain) -> Pretraining:
    """The strategy of a job's ``pretrain`` settings (``strategy``, and ``mask_ratio``/``mask_patches``)."""
    name = pretrain.strategy
    if name not in STRATEGIES:
        raise HarnessError(f"pretrain.strategy {name!r} has no pretraining (`none` is training from scratch, "
                           f"init scratch); pretraining strategies: {', '.join(STRATEGIES)}")
    if name == "masked":
        return Masked(pretrain.mask_ratio, pretrain.mask_patches)
    if name == "supervised":
        return Supervised(pretrain.train.loss)
    return STRATEGIES[name]()
