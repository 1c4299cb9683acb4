"""The time-dependent systems of Zhou et al. (2024): initial conditions and per-block sampling and solving
(their coefficients, shift levels and symmetries are ``harness.pde``'s rules).

    heat       u_t = nu Lap u
    advection  u_t + a . grad u = 0
    burgers    u_t + u (c . grad u) = nu Lap u

on the periodic unit square, 2D scalar u. All three are members of one family
``u_t + a . grad u + u (c . grad u) = nu Lap u`` with coefficients ``(nu, ax, ay, cx, cy)`` (the paper's file
keys), zero where a system lacks them.

Initial conditions follow the paper's generator: ``u0 = sum_{j<5} A_j sin(2 pi (kx_j x + ky_j y) + phi_j)``,
``A ~ U(-0.5, 0.5)``, integer ``kx, ky ~ U{1, 2, 3}``, ``phi ~ U(0, 2 pi)`` (mean zero).

Coefficient ranges are the paper's, read from its generator on its domain [-1, 1]^2 of side 2, mapped to the
unit square by x' = (x + 1) / 2: ``nu' = nu / 4``, ``a' = a / 2``, ``c' = c / 2`` (time and u unchanged), so the
trajectories are the paper's up to that change of variables. Velocity components are drawn independently
from the same range, positive, as in the paper.

``navier_stokes`` (``harness.pde.navier_stokes``: its equation, initial conditions and solver) is sampled and
solved here beside them, outside that family: its coefficients are ``NS_COEFS`` (visc, amp), and a model on its
data takes those channels (``harness.pde.model_coefs``), not the five.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from harness.errors import DataError
from harness.pde import (
    ALL_TIME_SYSTEMS,
    BURGERS_CFL,
    DEFAULT_REFINE,
    MAX_WAVENUMBER,
    NAVIER_STOKES,
    TIME_COEFS,
    Ranges,
    model_coefs,
)
from harness.pde.fourier import rfft2
from harness.pde.navier_stokes import navier_stokes_frames, sample_ns_block
from harness.pde.time_solve import advection_frames, burgers_frames, heat_frames, sine_spectrum

N_MODES, AMPLITUDE = 5, 0.5


def sample_time_block(system: str, rng: np.random.Generator, size: int, keep: int, ranges: Ranges,
                      t: np.ndarray, resolution: int, refine: int, dtype: type) -> dict[str, np.ndarray]:
    """Draw ``size`` initial conditions and coefficients of ``system`` from ``rng``, solve the first ``keep``.

    The draws always cover all ``size`` samples, so sample j depends on (rng seed, j) only. Returns ``u``
    (keep, nt, R, R) in ``dtype`` and the coefficients ``nu, ax, ay, cx, cy`` (keep,) float64 (navier_stokes:
    ``visc, amp``, ``harness.pde.navier_stokes.sample_ns_block``).
    """
    if system == NAVIER_STOKES:
        return sample_ns_block(rng, size, keep, ranges, t, resolution, refine, dtype)
    amp = rng.uniform(-AMPLITUDE, AMPLITUDE, (size, N_MODES))
    kx, ky = rng.integers(1, MAX_WAVENUMBER + 1, (2, size, N_MODES))
    phase = rng.uniform(0.0, 2 * np.pi, (size, N_MODES))
    coefs = {k: np.zeros(size) for k in TIME_COEFS}
    if "nu" in ranges:
        coefs["nu"] = rng.uniform(*ranges["nu"], size)
    for name in ("a", "c"):
        if name in ranges:
            coefs[f"{name}x"], coefs[f"{name}y"] = rng.uniform(*ranges[name], (2, size))
    coefs = {k: v[:keep] for k, v in coefs.items()}
    u0_hat = sine_spectrum(amp[:keep], kx[:keep], ky[:keep], phase[:keep], resolution)
    u = _solve(system, u0_hat, coefs, t, refine, BURGERS_CFL)
    return {"u": u.astype(dtype, copy=False), **coefs}


def _solve(system: str, u0_hat: np.ndarray, coefs: Mapping[str, np.ndarray], t: np.ndarray, refine: int,
           cfl: float) -> np.ndarray:
    if system == "heat":
        return heat_frames(u0_hat, coefs["nu"], t)
    if system == "advection":
        return advection_frames(u0_hat, coefs["ax"], coefs["ay"], t)
    if system == NAVIER_STOKES:
        return navier_stokes_frames(u0_hat, coefs["visc"], coefs["amp"], t, refine=refine, cfl=cfl)
    return burgers_frames(u0_hat, coefs["nu"], coefs["cx"], coefs["cy"], t, refine=refine, cfl=cfl)


def solve_time(system: str, u0: np.ndarray, coefs: np.ndarray, t: np.ndarray, *, refine: int = DEFAULT_REFINE,
               cfl: float = BURGERS_CFL) -> np.ndarray:
    """Trajectories ``(B, nt, R, R)`` float64 of ``system`` (one of ``ALL_TIME_SYSTEMS``) from initial fields
    ``u0`` (B, R, R) and coefficients ``coefs`` (B, C) in ``model_coefs(system)`` order (the five
    ``TIME_COEFS``; visc, amp for navier_stokes), at times ``t`` (nt,) with ``t[0] = 0``: the solvers of the
    generator (Burgers and Navier-Stokes on a ``refine`` times finer grid, ``u0`` interpolated spectrally,
    Courant number ``cfl``)."""
    if system not in ALL_TIME_SYSTEMS:
        raise DataError(f"solve_time solves one of {', '.join(ALL_TIME_SYSTEMS)}, got {system!r}")
    coefs = np.asarray(coefs, dtype=np.float64)
    u0_hat = rfft2(np.asarray(u0, dtype=np.float64))
    return _solve(system, u0_hat, dict(zip(model_coefs(system), coefs.T, strict=True)), np.asarray(t, np.float64),
                  refine, cfl)

