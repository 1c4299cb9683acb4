"""Lie-point symmetry augmentations of trajectories of the time-dependent systems (pure torch functions).

A batch is ``u`` (B, T, R, R), frames of trajectories at times ``t`` (T,), with coefficients ``coefs``
(B, 5) in ``TIME_COEFS`` order ``(nu, ax, ay, cx, cy)`` and ``systems`` (B,), indices in ``ALL_TIME_SYSTEMS``
(navier_stokes samples, whose coefficients are visc and amp, take ``noise`` only).
The three systems are members of one family

    (F)  u_t + a . grad u + u (c . grad u) = nu Lap u      (heat: a = c = 0; advection: nu = c = 0; burgers: a = 0)

on the periodic unit square, and each map below is derived on (F), then restricted to what keeps a system
inside its own member (``harness.pde.check_augment`` refuses the rest with the reason).

- ``shift``: u~(x, t) = u(x - d, t), any d in R^2. Every term of (F) commutes with translations and the
  coefficients are constant, so u~ solves the same equation. A symmetry of all three. Applied as the Fourier
  multiplier exp(-i 2 pi k . d), exact for fields without Nyquist content (a sub-pixel shift, not a roll).
- ``scale``: u~ = lam u (lam != 0). Substituting, lam [u_t + a . grad u + lam u (c . grad u) - nu Lap u] = 0:
  u~ solves (F) with c~ = c / lam (nu, a unchanged). For heat and advection (c = 0) it is a symmetry of the
  equation itself (they are linear and homogeneous); for Burgers it maps a solution with (nu, c) to one with
  (nu, c / lam): a symmetry of the Burgers family whose coefficient channels carry c / lam. The dilations
  (x, t, u) -> (e^s x, e^2s t, e^-s u) of heat and Burgers and (x, t) -> e^s (x, t) of advection are Lie point
  symmetries on R^2 but change the period of the domain, so they are not symmetries of the periodic unit
  square with fixed frame times and are not offered.
- ``galilean``: u~(x, t) = u(x - V t, t) + w. Then u~_t = u_t - V . grad u and grad u~ = grad u, so
  u~ solves (F) with a~ = a + V - w c (nu, c unchanged). Advection (c = 0): any boost V, a~ = a + V (w = 0
  here). Burgers (a~ must stay 0): only V = w c, i.e. u~(x, t) = u(x - w c t, t) + w with the same nu and c,
  a one-parameter symmetry boosting along c (a boost across c has no compensating offset). Heat: a~ = V
  must vanish, so only the trivial boost: refused. The frame at time t_j is shifted by V t_j; an offset
  in t (a window not starting at 0) adds a constant shift, itself a symmetry.
- ``noise``: u + sigma rms(u) xi, xi ~ N(0, 1). Not a symmetry (the result solves no equation of the family):
  a robustness augmentation, for input frames only.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from harness.errors import HarnessError
from harness.pde import ALL_TIME_SYSTEMS, TIME_AUGMENTS, TIME_COEFS, TIME_SYSTEMS, augment_applies
from harness.pde.fourier import apply_multipliers

Batch = tuple[torch.Tensor, torch.Tensor]
TimeAugment = Callable[..., Batch]
_NU, _AX, _AY, _CX, _CY = range(len(TIME_COEFS))


def shift(u: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor) -> torch.Tensor:
    """u(x - d) for fields ``u`` (B, ..., R, R): ``dx``, ``dy`` (fractions of the side) broadcast against
    ``u``'s leading dimensions, e.g. (B,) per sample or (B, T) per frame."""
    dx, dy = (d.to(u.dtype).reshape(*d.shape, *[1] * (u.dim() - d.dim())) for d in (dx, dy))
    return apply_multipliers(u, lambda kx, kx2, ky, ky2: (torch.exp(-1j * (kx * dx + ky * dy)),))[0]


def scale(u: torch.Tensor, coefs: torch.Tensor, lam: torch.Tensor) -> Batch:
    """(lam u, coefs with c / lam): lam (B,), nonzero. See the module docstring for the law."""
    lam = lam.to(u.dtype)
    new = coefs.clone()
    new[:, _CX:_CY + 1] = coefs[:, _CX:_CY + 1] / lam[:, None].to(coefs.dtype)
    return u * lam[:, None, None, None], new


def galilean(u: torch.Tensor, t: torch.Tensor, coefs: torch.Tensor, velocity: torch.Tensor,
             offset: torch.Tensor) -> Batch:
    """(u(x - V t, t) + w, coefs with a + V - w c) for boosts ``velocity`` V (B, 2) and offsets ``offset`` w (B,);
    ``t`` (T,) the frames' times. See the module docstring for which (V, w) keep each system in its equation."""
    tt = t.to(u.dtype)[None, :]
    moved = shift(u, velocity[:, :1].to(u.dtype) * tt, velocity[:, 1:].to(u.dtype) * tt)
    new = coefs.clone()
    new[:, _AX:_AY + 1] = coefs[:, _AX:_AY + 1] + velocity.to(coefs.dtype) - offset[:, None] * coefs[:, _CX:_CY + 1]
    return moved + offset.to(u.dtype)[:, None, None, None], new


def add_noise(u: torch.Tensor, sigma: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """``u + sigma * rms(u) * noise``: sigma (B,), rms per sample over all its frames, noise like ``u``."""
    rms = u.square().mean(dim=tuple(range(1, u.dim())), keepdim=True).sqrt()
    return u + sigma.to(u.dtype).view(-1, *[1] * (u.dim() - 1)) * rms * noise.to(u.dtype)


def make_time_augment(kind: str, *, prob: float, noise_level: float = 0.05, scale_max: float = 2.0,
                      max_boost: float = 1.0) -> TimeAugment | None:
    """The batch augmentation named ``kind`` (one of ``TIME_AUGMENTS``), or None for ``none``.

    It is called as ``(u, t, coefs, systems, generator, n_inputs=None) -> (u, coefs)`` and transforms each
    sample with probability ``prob`` where the augmentation applies to its system (others pass unchanged):
    ``shift`` by d ~ U[0, 1)^2; ``scale`` by lam log-uniform in [1 / scale_max, scale_max]; ``galilean`` with
    V ~ U[-max_boost, max_boost]^2 for advection and w ~ U[-max_boost, max_boost], V = w c for Burgers;
    ``noise`` with sigma = ``noise_level`` on the first ``n_inputs`` frames (all if None). The draws come from
    ``generator``, the same number whatever ``prob``, so a run is deterministic and resumes bit for bit.
    """
    if kind not in TIME_AUGMENTS:
        raise HarnessError(f"augment must be one of {', '.join(TIME_AUGMENTS)}, got {kind!r}")
    if kind == "none":
        return None
    admits = torch.tensor([augment_applies(s, kind) for s in ALL_TIME_SYSTEMS])

    def augment(u: torch.Tensor, t: torch.Tensor, coefs: torch.Tensor, systems: torch.Tensor,
                generator: torch.Generator, n_inputs: int | None = None) -> Batch:
        b, device = u.shape[0], u.device

        def uniform(*shape: int) -> torch.Tensor:
            return torch.rand(*shape, generator=generator, device=device, dtype=torch.float64)

        on = (uniform(b) < prob) & admits.to(device)[systems]
        if kind == "shift":
            d = uniform(b, 2) * on[:, None]
            return shift(u, d[:, 0], d[:, 1]), coefs
        if kind == "scale":
            lam = torch.exp((2 * uniform(b) - 1) * math.log(scale_max))
            return scale(u, coefs, torch.where(on, lam, torch.ones_like(lam)))
        if kind == "galilean":
            draw = (2 * uniform(b, 2) - 1) * max_boost * on[:, None]
            burgers = systems.to(device) == TIME_SYSTEMS.index("burgers")
            offset = torch.where(burgers, draw[:, 0], torch.zeros_like(draw[:, 0]))
            velocity = torch.where(burgers[:, None], offset[:, None] * coefs[:, _CX:_CY + 1].double(), draw)
            return galilean(u, t, coefs, velocity, offset)
        noise = torch.randn(u.shape, generator=generator, device=device, dtype=u.dtype)
        n = u.shape[1] if n_inputs is None else n_inputs
        noisy = add_noise(u[:, :n], noise_level * on, noise[:, :n])
        return torch.cat([noisy, u[:, n:]], dim=1), coefs

    return augment
