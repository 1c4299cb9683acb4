"""Pretext tasks on trajectories, with the meanings of Zhou et al. (2024) and their public code.

Every pretext view takes a window of ``window`` consecutive frames at a random start of each trajectory (as the
paper pretrains on random windows) and never reads a frame outside it: the targets come from the inputs
(self-supervised) or, for coefficient regression, from the equation's coefficients. The model is the task's
model (any family: ``window`` frame channels and the data's coefficient channels in, the five of heat, advection
and Burgers or navier_stokes' two), with its own head; fine-tuning drops the head (``head.``) and keeps the trunk
and the lifting.

- ``masked``: ``mask_ratio`` of the spatio-temporal patches (``MASK_FRAMES`` frames by (R / ``mask_patches``)^2
  points) are zeroed in the window's frames (the coefficient channels are left: they are no field to
  rebuild); the model rebuilds the window. L1 loss on the masked points, metric as the steady task's.
- ``derivative``: the window's first frame's u_t, u_x, u_y, u_xx, u_yy by finite differences of the frames
  themselves (second order: periodic central differences in space, the one-sided three-frame difference in
  time), from the window. Loss and metric: relative L2 per derivative, averaged (they differ in scale by
  orders of magnitude).
- ``coefficient``: the coefficients / their scales from the window, its coefficient channels zeroed
  (they hold the answer). Pooled head; MSE loss, relative L2 metric of the coefficient vector.
- ``sort_time``, ``sort_space``, ``jigsaw``: the window is cut into pieces, shuffled by one of a set of orders,
  and the model classifies which (the paper's ``Sort`` and ``Jigsaw`` of ``loss/spatiotemporal_losses.py``, after
  Misra et al. 2016 and Noroozi & Favaro 2016). ``sort_time``: ``SORT_CHUNKS`` chunks of frames, 4! = 24 orders
  (their temporal patches of 2 of 8 frames). ``sort_space``: ``SORT_TILES`` x ``SORT_TILES`` tiles of the grid, all
  frames together, 24 orders (their 16-point patches of 32 points). ``jigsaw``: both, ``JIGSAW_BLOCKS`` blocks of
  frames by the 2 x 2 tiles, 8 pieces (their 4-frame, 16-point patches), of whose 8! orders ``JIGSAW_CLASSES`` = 64
  are the classes: as theirs, orders that move every piece (Hamming distance 1 from the identity), among those
  chosen greedily to be far apart from each other (``jigsaw_orders``: Noroozi & Favaro's maximal minimum Hamming
  distance; their code takes the first 64 of the ties in an unstable sort). Pooled head of one logit per
  order; cross-entropy loss; metric the cross-entropy / ln(classes) (1 at chance).
- ``binary``: the paper's odd-one-out (``Binary_Sort``): half the windows (drawn per sample) have their frames
  in a random order other than their own, and the model classifies in order (1) or not (0). Their negatives
  shuffle ``int(T (1 - difficulty)) + 1`` frames with a difficulty that reaches only 0.75 / 32 over their run
  (epoch / (epochs x 32) x 0.75), so all 8 frames; ours shuffle all of them. Two logits, cross-entropy (their
  one-logit binary cross-entropy, with both classes weighted 0.5, is the same loss); metric cross-entropy / ln 2.
- ``picl``: physics-informed contrastive learning (the paper's ``GCL2D``, Lorsung & Barati Farimani 2024): a
  generalised contrastive loss over every pair of windows in a batch whose target similarity is that of their
  equations' coefficients, their ``_pde_similarity_2d``: each coefficient vector reduced to p = (diffusion, the
  norm of the rest: (nu, |(ax, ay, cx, cy)|), or Navier-Stokes' (visc, amp)), here each coefficient over its scale,
  and s_ij = sqrt(p_i . p_j) / max(|p_i|, |p_j|) (1 for equal equations, 0 for heat against advection). The
  window's coefficient channels are zeroed (they hold the answer). Pooled head of ``PICL_DIM`` outputs,
  normalised to the unit sphere; pair loss s d^2 + (1 - s) max(m - d, 0)^2 with d the embeddings' distance and
  margin ``PICL_MARGIN`` (minimised at d = (1 - s) m: distances learn the equations' dissimilarity); metric a
  sample's mean pair loss over the batch's mean loss of a collapsed embedding (d = 0): 1 at collapse. Their
  representation is instead the model's field output and their distance anchored by a finite-difference update
  of it; with the window in the input, that field can copy a frame and make every distance vanish, and a margin
  of the batch's mean distance (theirs) lets embeddings shrink to a point: hence unit embeddings, a fixed margin.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from harness.errors import HarnessError
from harness.job import Pretrain
from harness.pde import TIME_COEFS
from harness.tasks import JIGSAW_BLOCKS, JIGSAW_CLASSES, MASK_FRAMES, SORT_CHUNKS
from harness.tasks.trajectories import Trajectories
from harness.train import DERIVATIVE_OUTPUTS, SORT_TILES, masked_patches
from harness.train.strategies import (
    Classify,
    Coefficient,
    Derivative,
    Masked,
    Pooled,
    patch_mask,
    permutations,
    shuffle_pieces,
)

ORDERS = permutations(SORT_CHUNKS)  # sort_time's classes
PICL_DIM, PICL_MARGIN = 16, 1.0  # picl: the embedding's size and the contrastive margin (unit embeddings)


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
    out_channels = DERIVATIVE_OUTPUTS
    loss = Derivative.loss
    metric = Derivative.metric

    def view(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Input: the window and the coefficients; target: ``finite_differences`` of the window."""
        frames = self.random_window(x, self.window, generator)
        return self.inputs(frames, y), finite_differences(frames, float(self.times[1] - self.times[0]))


class TimeCoefficient(Pooled, Trajectories):
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


@lru_cache(maxsize=4)
def jigsaw_orders(pieces: int, classes: int) -> torch.Tensor:
    """``classes`` orders (classes, pieces) of ``pieces`` pieces that move every piece, chosen greedily from the
    first in lexicographic order: each next one the first whose least Hamming distance to those chosen is
    largest (deterministic)."""
    perms = np.array(list(itertools.permutations(range(pieces))))
    moved = perms[(perms != np.arange(pieces)).all(axis=1)]
    chosen, nearest = [0], (moved != moved[0]).sum(axis=1)
    while len(chosen) < classes:
        chosen.append(int(np.argmax(nearest)))
        nearest = np.minimum(nearest, (moved != moved[chosen[-1]]).sum(axis=1))
    return torch.as_tensor(moved[chosen])


class Shuffled(Classify, Pooled, Trajectories):
    """The window cut into ``blocks`` blocks of frames by ``tiles`` x ``tiles`` tiles, shuffled by one of
    ``orders``; the model classifies which (sort_time, sort_space, jigsaw; see the module docstring)."""

    blocks, tiles = 1, 1

    def orders(self) -> torch.Tensor:
        """The classes: orders (classes, pieces) of the pieces."""
        return permutations(self.blocks * self.tiles * self.tiles)

    def view(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Input: the window, its pieces in a random order, and the coefficients; target: the order's index."""
        frames = self.random_window(x, self.window, generator)
        orders = self.orders().to(x.device)
        label = torch.randint(0, len(orders), (x.shape[0],), generator=generator, device=x.device)
        return self.inputs(shuffle_pieces(frames, self.blocks, self.tiles, orders[label]), y), label


class SortTime(Shuffled):
    """Which order the window's chunks of frames were shuffled into."""

    name = "sort_time"
    blocks, out_channels = SORT_CHUNKS, len(ORDERS)


class SortSpace(Shuffled):
    """Which order the window's tiles (every frame together) were shuffled into."""

    name = "sort_space"
    tiles, out_channels = SORT_TILES, math.factorial(SORT_TILES * SORT_TILES)


class Jigsaw(Shuffled):
    """Which of ``JIGSAW_CLASSES`` orders the window's blocks of frames by tiles were shuffled into."""

    name = "jigsaw"
    blocks, tiles, out_channels = JIGSAW_BLOCKS, SORT_TILES, JIGSAW_CLASSES

    def orders(self) -> torch.Tensor:
        """``jigsaw_orders`` of the pieces."""
        return jigsaw_orders(self.blocks * self.tiles * self.tiles, JIGSAW_CLASSES)


class Binary(Classify, Pooled, Trajectories):
    """Whether the window's frames are in their order (1) or shuffled (0); see the module docstring."""

    name = "binary"
    out_channels = 2

    def view(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Input: the window, in order or its frames in another order, and the coefficients; target: in order."""
        frames = self.random_window(x, self.window, generator)
        b, t = frames.shape[:2]
        in_order = torch.randint(0, 2, (b,), generator=generator, device=x.device)
        shuffled = torch.rand(b, t, generator=generator, device=x.device).argsort(dim=1)
        identity = torch.arange(t, device=x.device).expand(b, t)
        same = (shuffled == identity).all(dim=1, keepdim=True)
        shuffled = torch.where(same, shuffled.roll(1, dims=1), shuffled)  # never the frames' own order
        order = torch.where(in_order[:, None] == 1, identity, shuffled)
        return self.inputs(shuffle_pieces(frames, t, 1, order), y), in_order


class Picl(Pooled, Trajectories):
    """Physics-informed contrastive learning of window embeddings; see the module docstring."""

    name = "picl"
    out_channels = PICL_DIM

    def view(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Input: the window with zero coefficient channels; target: p (B, 2), the reduced coefficients."""
        frames = self.random_window(x, self.window, generator)
        scaled = self.scaled(y)
        return self.inputs(frames, torch.zeros_like(y)), torch.stack([scaled[:, 0], scaled[:, 1:].norm(dim=1)], 1)

    @staticmethod
    def pairs(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(pair losses (B, B), the collapsed embedding's (B, B)), each 0 on the diagonal."""
        p = target.to(pred.dtype)
        norm = p.norm(dim=1)
        similarity = (p @ p.T).clamp_min(0).sqrt() / torch.maximum(norm[:, None], norm[None, :]).clamp_min(1e-12)
        z = F.normalize(pred, dim=1)
        d2 = (2 - 2 * z @ z.T).clamp_min(1e-12)
        off = 1 - torch.eye(len(p), dtype=p.dtype, device=p.device)
        losses = similarity * d2 + (1 - similarity) * F.relu(PICL_MARGIN - d2.sqrt()).square()
        return losses * off, (1 - similarity) * PICL_MARGIN**2 * off

    def loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The mean pair loss over the batch's pairs of distinct windows."""
        losses, _ = self.pairs(pred, target)
        return losses.sum() / max(len(pred) * (len(pred) - 1), 1)

    def metric(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per sample: its mean pair loss over the batch's mean pair loss of a collapsed embedding."""
        losses, collapsed = self.pairs(pred, target)
        return losses.sum(dim=1) / collapsed.sum(dim=1).mean().clamp_min(1e-12)


def make_pretext(pretrain: Pretrain, window: int, times: Sequence[float],
                 channels: tuple[str, ...] = TIME_COEFS) -> Trajectories:
    """The pretext strategy of a job's ``pretrain`` settings on windows of ``window`` frames at ``times``, its
    model taking the coefficient ``channels``."""
    name = pretrain.strategy
    if name == "masked":
        return TimeMasked(window, times, pretrain.mask_ratio, pretrain.mask_patches, channels)
    kinds = {"derivative": TimeDerivative, "coefficient": TimeCoefficient, "sort_time": SortTime,
             "sort_space": SortSpace, "jigsaw": Jigsaw, "binary": Binary, "picl": Picl}
    if name not in kinds:
        raise HarnessError(f"pretrain.strategy {name!r} is no pretext task on trajectories (`none` is training from "
                           f"scratch, supervised the task itself); pretext tasks: masked, {', '.join(kinds)}")
    return kinds[name](window, times, channels=channels)
