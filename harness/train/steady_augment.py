"""Data augmentation of (input, solution) batches, exact symmetries of the periodic linear PDEs.

A batch is ``x`` (B, C, R, R), the normalised FNO input (channel 0 the source, channels 1.. the constant
coefficient channels, see ``harness.train.normalise``), and ``y`` (B, 1, R, R), the solution u. Each
augmentation is applied to each sample independently with probability ``prob``; the random draws come
from the training loop's seeded generator, always the same number of them whatever ``prob``, so a run is
deterministic and resumes bit for bit.

- ``shift``: roll source, coefficient channels (constant: unaffected) and solution by the same random
  integer offsets. The problems are periodic and translation invariant, so the pair still solves the PDE
  exactly.
- ``noise``: add Gaussian noise to the source channel of the input, ``noise_level`` times the sample's
  source RMS; the coefficient channels and the target are untouched.
- ``scale``: the PDEs are linear, so source a f (a > 0) has solution a u. Per-instance normalisation
  divides the whole input by ``s_i ~ ||f_i||``, which becomes a s_i: the source channel a f / (a s_i) is
  unchanged, the coefficient channels are divided by a, and the target is multiplied by a. This is exactly
  the input and target ``make_inputs`` / the solver would give for the source a f (``a`` log-uniform in
  [1 / scale_max, scale_max]).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from harness.errors import HarnessError
from harness.job import STEADY_AUGMENTS

Batch = tuple[torch.Tensor, torch.Tensor]
Augment = Callable[[torch.Tensor, torch.Tensor, torch.Generator], Batch]


def roll(t: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor) -> torch.Tensor:
    """Periodic roll of each sample of ``t`` (B, C, H, W) by its own integer offsets ``dx``, ``dy`` (B,).

    Sample b equals ``torch.roll(t[b], (dx[b], dy[b]), dims=(-2, -1))``.
    """
    b, c, h, w = t.shape
    rows = (torch.arange(h, device=t.device)[None, :] - dx[:, None]) % h  # out[i] = in[i - dx]
    cols = (torch.arange(w, device=t.device)[None, :] - dy[:, None]) % w
    t = t.gather(2, rows[:, None, :, None].expand(b, c, h, w))
    return t.gather(3, cols[:, None, None, :].expand(b, c, h, w))


def shift(x: torch.Tensor, y: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor) -> Batch:
    """Roll input and solution together by per-sample integer offsets ``dx``, ``dy`` (B,)."""
    return roll(x, dx, dy), roll(y, dx, dy)


def scale(x: torch.Tensor, y: torch.Tensor, factor: torch.Tensor) -> Batch:
    """The normalised pair of the source ``factor * f`` (factor > 0, shape (B,)): see the module docstring."""
    a = factor.to(x.dtype)[:, None, None, None]
    return torch.cat([x[:, :1], x[:, 1:] / a], dim=1), y * a.to(y.dtype)


def add_noise(x: torch.Tensor, sigma: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Add ``sigma`` (B,) times the source RMS times ``noise`` (B, 1, H, W) to the source channel of ``x``."""
    rms = x[:, :1].square().mean(dim=(-2, -1), keepdim=True).sqrt()
    return torch.cat([x[:, :1] + sigma.to(x.dtype)[:, None, None, None] * rms * noise.to(x.dtype), x[:, 1:]], dim=1)


def make_augment(kind: str, *, prob: float, noise_level: float, scale_max: float) -> Augment | None:
    """The batch augmentation ``(x, y, generator) -> (x, y)`` named ``kind``, or None for ``none``."""
    if kind not in STEADY_AUGMENTS:
        raise HarnessError(f"augment of steady (input, solution) batches must be one of {STEADY_AUGMENTS}, but got "
                           f"{kind!r} (galilean is a symmetry of time-dependent systems: harness.train.time_augment)")
    if kind == "none":
        return None

    def chosen(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Which samples to augment: (B,) bool, drawn with probability ``prob`` each."""
        return torch.rand(x.shape[0], generator=generator, device=x.device) < prob

    def shift_batch(x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> Batch:
        on = chosen(x, generator)
        h, w = x.shape[-2:]
        dx = torch.randint(0, h, (x.shape[0],), generator=generator, device=x.device) * on
        dy = torch.randint(0, w, (x.shape[0],), generator=generator, device=x.device) * on
        return shift(x, y, dx, dy)

    def noise_batch(x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> Batch:
        on = chosen(x, generator)
        noise = torch.randn(x[:, :1].shape, generator=generator, device=x.device)
        return add_noise(x, noise_level * on, noise), y

    def scale_batch(x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> Batch:
        on = chosen(x, generator)
        u = torch.rand(x.shape[0], generator=generator, device=x.device) * 2 - 1
        return scale(x, y, torch.where(on, torch.exp(u * math.log(scale_max)), torch.ones_like(u)))

    return {"shift": shift_batch, "noise": noise_batch, "scale": scale_batch}[kind]
