"""The time-dependent systems of Zhou et al. (2024): coefficients, shift levels, initial conditions, symmetries.

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

``navier_stokes`` (``harness.pde.navier_stokes``: its equation, ranges, initial conditions and solver) is
registered here beside them, outside that family: its coefficients are ``NS_COEFS`` (visc, amp), and a model
on its data takes those channels (:func:`model_coefs`), not the five.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from harness.errors import DataError, SweepError
from harness.pde.navier_stokes import NS_COEFS, NS_SHIFT_LEVELS, navier_stokes_frames, sample_ns_block
from harness.pde.solve import rfft2
from harness.pde.systems import NAVIER_STOKES, TIME_MIXED, TIME_SYSTEMS
from harness.pde.time_solve import (
    BURGERS_CFL,
    DEFAULT_REFINE,
    advection_frames,
    burgers_frames,
    heat_frames,
    sine_spectrum,
)

TIME_COEFS = ("nu", "ax", "ay", "cx", "cy")
# Every time-dependent system solved (``params["system"]`` indexes it): the family, then Navier-Stokes.
ALL_TIME_SYSTEMS = (*TIME_SYSTEMS, NAVIER_STOKES)
TIME_CHANNELS = {"heat": ("nu",), "advection": ("ax", "ay"), "burgers": ("nu", "cx", "cy"), TIME_MIXED: TIME_COEFS,
                 NAVIER_STOKES: NS_COEFS}
# Each system's drawn parameters: nu, a (both velocity components) and c (both components); visc and amp.
TIME_PARAMS = {"heat": ("nu",), "advection": ("a",), "burgers": ("nu", "c"), NAVIER_STOKES: NS_COEFS}
POSITIVE_PARAMS = ("nu", *NS_COEFS)  # the others (velocity components) may be 0
N_MODES, MAX_WAVENUMBER, AMPLITUDE = 5, 3, 0.5
PAPER_SIDE = 2.0  # the paper's domain [-1, 1]^2


def _unit(**paper: tuple[float, float]) -> dict[str, tuple[float, float]]:
    """Ranges on the paper's domain mapped to the unit square: nu / side^2, velocities / side."""
    power = {"nu": 2, "a": 1, "c": 1}
    return {k: (lo / PAPER_SIDE ** power[k], hi / PAPER_SIDE ** power[k]) for k, (lo, hi) in paper.items()}


# id: the paper's pretraining and in-distribution ranges; ood: its out-of-distribution fine-tuning ranges
# (its generator's active ranges, the id ones commented beside them). Burgers also shifts nu or c alone.
TIME_SHIFT_LEVELS = {
    "heat": {"id": _unit(nu=(2e-3, 2e-2)), "ood": _unit(nu=(2e-2, 3e-2))},
    "advection": {"id": _unit(a=(0.1, 2.5)), "ood": _unit(a=(2.5, 3.5))},
    "burgers": {
        "id": _unit(nu=(7.5e-3, 1.5e-2), c=(0.5, 1.0)),
        "ood": _unit(nu=(5e-3, 7.5e-3), c=(1.0, 1.25)),
        "ood_nu": _unit(nu=(5e-3, 7.5e-3), c=(0.5, 1.0)),
        "ood_c": _unit(nu=(7.5e-3, 1.5e-2), c=(1.0, 1.25)),
    },
    NAVIER_STOKES: NS_SHIFT_LEVELS,  # on the unit square already (the FNO generator's domain)
}
TIME_MIXED_LEVELS = ("id", "ood")
Ranges = dict[str, tuple[float, float]]


def model_coefs(system: str) -> tuple[str, ...]:
    """The coefficient channels of a time model on ``system``'s data (a time system, ``mixed_time``, or a data
    part's system label): ``NS_COEFS`` for navier_stokes, else the five ``TIME_COEFS`` of the heat, advection
    and Burgers family (zero where a system lacks one)."""
    return NS_COEFS if system == NAVIER_STOKES else TIME_COEFS


def check_time_system(system: str) -> str:
    """Return ``system`` if it names a time-dependent system or ``mixed_time``; raise DataError otherwise."""
    if system not in (*ALL_TIME_SYSTEMS, TIME_MIXED):
        raise DataError(f"unknown time-dependent system {system!r}: choose one of "
                        f"{', '.join((*ALL_TIME_SYSTEMS, TIME_MIXED))}")
    return system


def _check_range(system: str, name: str, value: object) -> tuple[float, float]:
    if (isinstance(value, str | bytes) or not hasattr(value, "__len__") or len(value) != 2
            or not all(isinstance(v, int | float | np.number) and not isinstance(v, bool) for v in value)
            or not all(math.isfinite(v) for v in value)):
        raise DataError(f"{system} range for {name} must be two finite numbers [lo, hi], got {value!r}")
    lo, hi = float(value[0]), float(value[1])
    if lo > hi:
        raise DataError(f"{system} range for {name} must have lo <= hi, got [{value[0]}, {value[1]}]")
    if (lo <= 0) if name in POSITIVE_PARAMS else (lo < 0):
        bound = f"{name} must be > 0" if name in POSITIVE_PARAMS else f"velocity components {name} must be >= 0"
        raise DataError(f"{system} {bound}, got [{value[0]}, {value[1]}]")
    return lo, hi


def resolve_time_ranges(system: str, shift: str | Mapping[str, object] | None = None) -> dict[str, Ranges]:
    """``{system: {param: (lo, hi)}}`` for a named ``shift`` level (``id`` by default) or an explicit mapping
    ``{param: [lo, hi]}`` over the system's ``TIME_PARAMS`` (missing ones take the ``id`` range);
    ``mixed_time`` takes a level name only and gives each of the three systems that level."""
    check_time_system(system)
    level = "id" if shift is None else shift
    if system == TIME_MIXED:
        if not isinstance(level, str) or level not in TIME_MIXED_LEVELS:
            raise DataError(f"{TIME_MIXED} takes a shift level name, one of {', '.join(TIME_MIXED_LEVELS)}; "
                            f"got shift={shift!r}")
        return {s: TIME_SHIFT_LEVELS[s][level] for s in TIME_SYSTEMS}
    levels = TIME_SHIFT_LEVELS[system]
    if isinstance(level, str):
        if level not in levels:
            raise DataError(f"unknown shift level {level!r} for {system}: choose one of {', '.join(levels)} "
                            f"or give {{param: [lo, hi]}} over {', '.join(TIME_PARAMS[system])}")
        return {system: levels[level]}
    if not isinstance(level, Mapping) or not set(level) <= set(TIME_PARAMS[system]):
        raise DataError(f"{system} shift must be a level name ({', '.join(levels)}) or a mapping over "
                        f"{', '.join(TIME_PARAMS[system])}, got {shift!r}")
    return {system: {**levels["id"], **{k: _check_range(system, k, v) for k, v in level.items()}}}


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


# --- which augmentations are symmetries of which system (the maths is in harness.train.augment_time) ----------

TIME_AUGMENTS = ("none", "shift", "scale", "galilean", "noise")
_REFUSED = {
    ("heat", "galilean"): "a boost u(x - v t, t) solves u_t + v . grad u = nu Lap u, an advection-diffusion "
                          "equation: heat has no velocity to absorb v (only v = 0 maps heat to heat)",
    (NAVIER_STOKES, "shift"): "its forcing g(x + y) is invariant under shifts along (1, -1) only, and the "
                              "augmentation shifts in any direction",
    (NAVIER_STOKES, "scale"): "w -> lam w needs t -> t / lam (so frame times change) and amp -> lam^2 amp",
    (NAVIER_STOKES, "galilean"): "a boost needs a mean flow, which a stream function on the periodic square "
                                 "has not, and would move the forcing",
}


def augment_applies(system: str, augment: str) -> bool:
    """Whether ``augment`` maps solutions of ``system`` (one of ``ALL_TIME_SYSTEMS``) to solutions (``noise``,
    a robustness augmentation, applies to all)."""
    return (system, augment) not in _REFUSED


def check_augment(system: str, augment: str) -> None:
    """Raise SweepError (one line: the value, the reason, the valid choices) unless ``augment`` applies to
    ``system``. Under ``mixed_time`` an augmentation applies if it applies to one of the three systems, and
    is applied only to the samples of those systems."""
    check_time_system(system)
    if augment not in TIME_AUGMENTS:
        raise SweepError(f"augment must be one of {', '.join(TIME_AUGMENTS)}, got {augment!r}")
    members = TIME_SYSTEMS if system == TIME_MIXED else (system,)
    if not any(augment_applies(s, augment) for s in members):
        valid = [a for a in TIME_AUGMENTS if augment_applies(system, a)]
        raise SweepError(f"augment {augment!r} does not apply to {system}: {_REFUSED[system, augment]}; "
                         f"choose one of {', '.join(valid)}")
