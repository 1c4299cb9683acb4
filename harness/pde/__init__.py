"""The torch-free rules of the PDE data: the systems, their coefficient channels, shift levels and ranges, the
time-dependent systems' coefficients, levels and symmetries, the frames of a trajectory, and the step bound of
the Navier-Stokes solve (checked at expand).

``harness expand`` checks every sweep point with these; the generators use the same names and ranges. Steady
systems (SYS-1 poisson, SYS-2 advection_diffusion, SYS-3 helmholtz, and their ``mixed``): sampled and solved in
``harness.pde.steady_systems`` (sources: ``steady_sources``, Fourier calculus: ``fourier``), generated as
datasets in ``steady_dataset``. Time-dependent systems (heat, advection, Burgers, and ``mixed_time``): sampled
in ``time_systems``, solved in ``time_solve``, generated in ``time_dataset``; ``navier_stokes`` (its own
coefficients visc and amp, outside that family: ``model_coefs``) sampled and solved in ``navier_stokes``.
``cache`` saves, loads and caches both kinds as train/val/test splits (``SPLITS``).

``LAYOUT_VERSION`` numbers the steady channel layout; a job's id includes it, so data and checkpoints of another
layout are never mixed in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from harness.errors import DataError, SweepError

SPLITS = ("train", "val", "test")
SYSTEMS = ("poisson", "advection_diffusion", "helmholtz")
MIXED = "mixed"
# The time-dependent systems of the second study (solved in harness.pde.time_systems) and their mixture.
TIME_SYSTEMS = ("heat", "advection", "burgers")
TIME_MIXED = "mixed_time"
# 2D incompressible Navier-Stokes (harness.pde.navier_stokes): time-dependent, with coefficients of its own.
NAVIER_STOKES = "navier_stokes"
COMMON_CHANNELS = ("k11", "k22", "k12", "v1", "v2", "omega")
CHANNELS = {
    "poisson": ("k11", "k22", "k12"),
    "advection_diffusion": ("k11", "k22", "k12", "v1", "v2"),
    "helmholtz": ("k11", "k22", "k12", "omega"),
    MIXED: COMMON_CHANNELS,
}
# 1: helmholtz had its omega channel only; 2: every operator whole in its channels (helmholtz's 0.01 I too).
LAYOUT_VERSION = 2
SHIFTED_PARAM = {"poisson": "e", "advection_diffusion": "psi", "helmholtz": "omega"}
SHIFT_LEVELS = {
    "poisson": {"id": (1.0, 5.0), "moderate": (5.0, 10.0), "large": (10.0, 20.0)},
    "advection_diffusion": {
        "id": (0.2, 1.0),
        "moderate": (1.0, 2.0),
        "large": (0.01, 0.2),
        "advection": (1.0, 2.0),
        "diffusion": (0.01, 0.2),
    },
    "helmholtz": {"id": (1, 10), "moderate": (10, 20), "large": (20, 30)},
}
MIXED_LEVELS = ("id", "moderate", "large")


def _choices(names: Sequence[str]) -> str:
    return ", ".join(names)


def check_system(system: str) -> str:
    """Return ``system`` if it names a system or ``mixed``; raise DataError otherwise."""
    if system not in (*SYSTEMS, MIXED):
        raise DataError(f"unknown system {system!r}: choose one of {_choices((*SYSTEMS, MIXED))}")
    return system


def _check_range(system: str, rng_: object) -> tuple[float, float]:
    name = SHIFTED_PARAM[system]
    if (
        isinstance(rng_, str | bytes)
        or not isinstance(rng_, Sequence)
        or len(rng_) != 2
        or not all(isinstance(v, int | float | np.number) and not isinstance(v, bool) for v in rng_)
        or not all(math.isfinite(v) for v in rng_)
    ):
        raise DataError(f"{system} range for {name} must be two finite numbers [lo, hi], got {rng_!r}")
    lo, hi = rng_
    if lo > hi:
        raise DataError(f"{system} range for {name} must have lo <= hi, got [{lo}, {hi}]")
    if system == "poisson" and lo < 1:
        raise DataError(f"poisson anisotropy e must be >= 1, got [{lo}, {hi}]")
    if system == "advection_diffusion" and lo <= 0:
        raise DataError(f"advection_diffusion ratio Psi must be > 0, got [{lo}, {hi}]")
    if system == "helmholtz":
        if lo != int(lo) or hi != int(hi) or lo < 1:
            raise DataError(f"helmholtz omega range must be integers >= 1, got [{lo}, {hi}]")
        return int(lo), int(hi)
    return float(lo), float(hi)


def resolve_range(system: str, shift: str | Sequence[float] | None = None,
                  coef_range: Sequence[float] | None = None) -> tuple[float, float]:
    """The (lo, hi) range of ``system``'s shifted coefficient for a named ``shift`` level, an explicit
    ``[lo, hi]`` (as ``shift`` or ``coef_range``), or the in-distribution level ``id`` by default."""
    check_system(system)
    if system == MIXED:
        raise DataError(f"system 'mixed' has one range per system: ask resolve_range for each of "
                        f"{_choices(SYSTEMS)} (mixed takes a level name: {_choices(MIXED_LEVELS)})")
    if shift is not None and coef_range is not None:
        raise DataError(f"give either shift or coef_range, not both: got shift={shift!r}, "
                        f"coef_range={coef_range!r}")
    if coef_range is None and (shift is None or isinstance(shift, str)):
        level = "id" if shift is None else shift
        if level not in SHIFT_LEVELS[system]:
            raise DataError(f"unknown shift level {level!r} for {system}: choose one of "
                            f"{_choices(SHIFT_LEVELS[system])} or give [lo, hi]")
        return SHIFT_LEVELS[system][level]
    return _check_range(system, coef_range if coef_range is not None else shift)


def resolve_ranges(system: str, shift: str | Sequence[float] | None = None,
                   coef_range: Sequence[float] | None = None) -> dict[str, tuple[float, float]]:
    """``{system: (lo, hi)}`` for one system, or for each of the three under ``mixed`` (a level name only)."""
    if check_system(system) != MIXED:
        return {system: resolve_range(system, shift, coef_range)}
    level = "id" if shift is None else shift
    if coef_range is not None or not isinstance(level, str) or level not in MIXED_LEVELS:
        raise DataError(f"mixed takes a shift level name, one of {_choices(MIXED_LEVELS)}; got "
                        f"shift={shift!r}, coef_range={coef_range!r}")
    return {s: SHIFT_LEVELS[s][level] for s in SYSTEMS}


# --- the time-dependent systems -------------------------------------------------------------------------------

TIME_COEFS = ("nu", "ax", "ay", "cx", "cy")
NS_COEFS = ("visc", "amp")  # navier_stokes' coefficients (Zhou et al.'s file keys), its models' coefficient channels
# Every time-dependent system solved (``params["system"]`` indexes it): the family, then Navier-Stokes.
ALL_TIME_SYSTEMS = (*TIME_SYSTEMS, NAVIER_STOKES)
TIME_CHANNELS = {"heat": ("nu",), "advection": ("ax", "ay"), "burgers": ("nu", "cx", "cy"), TIME_MIXED: TIME_COEFS,
                 NAVIER_STOKES: NS_COEFS}
# Each system's drawn parameters: nu, a (both velocity components) and c (both components); visc and amp.
TIME_PARAMS = {"heat": ("nu",), "advection": ("a",), "burgers": ("nu", "c"), NAVIER_STOKES: NS_COEFS}
POSITIVE_PARAMS = ("nu", *NS_COEFS)  # the others (velocity components) may be 0
PAPER_SIDE = 2.0  # the paper's domain [-1, 1]^2 (harness.pde.time_systems: the change of variables)


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
    # On the unit square already (the FNO generator's domain); id from Zhou et al.'s mae-pdes get_variables('ns'),
    # the others ours (harness.pde.navier_stokes says why).
    NAVIER_STOKES: {
        "id": {"visc": (1e-9, 1e-5), "amp": (1e-3, 1e-2)},
        "ood": {"visc": (1e-5, 1e-4), "amp": (1e-2, 5e-2)},
        "ood_visc": {"visc": (1e-5, 1e-4), "amp": (1e-3, 1e-2)},
        "ood_amp": {"visc": (1e-9, 1e-5), "amp": (1e-2, 5e-2)},
    },
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


def _check_time_range(system: str, name: str, value: object) -> tuple[float, float]:
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
    return {system: {**levels["id"], **{k: _check_time_range(system, k, v) for k, v in level.items()}}}


# --- which augmentations are symmetries of which system (the maths is in harness.train.time_augment) ----------

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


# --- trajectories: frames, horizon and the Burgers and Navier-Stokes solves' refinement and step -------------

MAX_WAVENUMBER = 3  # of the initial conditions' modes, in each axis (harness.pde.time_systems draws them)
DECAY = 30.0  # e-folds a diffusing solution may lose by the last frame: beyond, a frame is below 1e-13 of its start
# Burgers and Navier-Stokes solve grid / stored grid: 128^2 for 32^2 (bench/RESULTS.md has the accuracy at each factor).
DEFAULT_REFINE = 4
DEFAULT_FRAMES = 32
DEFAULT_HORIZON = 2.0  # time units, as the paper
MAX_REFINE = 16


def check_time_request(nt: object, horizon: object, refine: object) -> tuple[int, float, int]:
    """Validate the frames, horizon and refinement of a request; raise DataError naming a bad value."""
    if isinstance(nt, bool) or not isinstance(nt, int | np.integer) or nt < 2:
        raise DataError(f"nt (frames per trajectory) must be an integer >= 2, got {nt!r}")
    if (isinstance(horizon, bool) or not isinstance(horizon, int | float | np.number)
            or not math.isfinite(horizon) or horizon <= 0):
        raise DataError(f"horizon must be a finite number of time units > 0, got {horizon!r}")
    if isinstance(refine, bool) or not isinstance(refine, int | np.integer) or not 1 <= refine <= MAX_REFINE:
        raise DataError(f"refine (Burgers and Navier-Stokes solve grid / stored grid) must be an integer in "
                        f"[1, {MAX_REFINE}], got {refine!r}")
    return int(nt), float(horizon), int(refine)


# --- the Navier-Stokes solve's step bound (harness.pde.navier_stokes; checked at expand and at request time) ------

# Courant number of the Burgers step, (|cx| + |cy|) max|u| dt / dx, and of the Navier-Stokes one, (max|u| + max|v|)
# dt / dx (harness.pde.time_solve): ETDRK4 on the dealiased spectrum is linearly stable up to about 1.3, and 0.5
# keeps the time error far below the spatial one.
BURGERS_CFL = 0.5
GRF_ALPHA, GRF_TAU = 2.5, 7.0  # the FNO generator's initial-vorticity field (harness.pde.navier_stokes)
# The a-priori speed bound counts this many standard deviations of each initial velocity component.
VELOCITY_SIGMAS = 5.0
# Steps per trajectory beyond which a request is refused (a step below horizon / MAX_STEPS): ~10 s per sample
# on the default 128^2 solve grid, and ~80 times the steps of the id level at the default horizon.
MAX_STEPS = 10_000


def grf_amplitudes(resolution: int) -> np.ndarray:
    """Per mode of the full ``R x R`` FFT grid, the initial vorticity's standard deviation in it:
    ``sqrt(2) sigma (4 pi^2 |k|^2 + tau^2)^(-alpha/2)``, sigma = tau^(alpha - 1), 0 at k = 0 and where |kx| or
    |ky| >= R / 2 (band-limited on the stored grid)."""
    k = np.fft.fftfreq(resolution, 1.0 / resolution)
    kx, ky = np.meshgrid(k, k, indexing="ij")
    sigma = GRF_TAU ** (GRF_ALPHA - 1.0)
    amp = math.sqrt(2.0) * sigma * (4 * math.pi**2 * (kx**2 + ky**2) + GRF_TAU**2) ** (-GRF_ALPHA / 2)
    amp[0, 0] = 0.0
    amp[(np.abs(kx) >= resolution // 2) | (np.abs(ky) >= resolution // 2)] = 0.0
    return amp


def grf_velocity_std(resolution: int) -> float:
    """The standard deviation of each initial velocity component at a point (the same for both)."""
    k = np.fft.fftfreq(resolution, 1.0 / resolution)
    kx, ky = np.meshgrid(k, k, indexing="ij")
    k2 = (2 * math.pi) ** 2 * (kx**2 + ky**2)
    k2[0, 0] = 1.0
    return float(np.sqrt(np.sum(grf_amplitudes(resolution) ** 2 * (2 * math.pi * ky) ** 2 / k2**2)))


def speed_bound(ranges: Ranges, resolution: int, horizon: float) -> float:
    """An a-priori bound of max|u| + max|v| over a Navier-Stokes trajectory: ``VELOCITY_SIGMAS`` standard
    deviations of each initial component, plus what the forcing at the largest amp adds over ``horizon`` with
    neither diffusion nor transfer to other modes (the forced mode's w grows by at most sqrt(2) amp t, its
    |u| + |v| by sqrt(2) amp t / (2 pi))."""
    return (2 * VELOCITY_SIGMAS * grf_velocity_std(resolution)
            + math.sqrt(2.0) * ranges["amp"][1] * horizon / (2 * math.pi))


def check_steps(ranges: Ranges, resolution: int, horizon: float, refine: int, cfl: float = BURGERS_CFL) -> None:
    """Raise DataError (one line) unless the CFL-bounded step at :func:`speed_bound` stays above the floor
    ``horizon / MAX_STEPS`` on the solve grid: what the Navier-Stokes solve refuses, checked before any solve (a
    request's, and so expand's, check)."""
    fine = resolution * refine
    speed = speed_bound(ranges, resolution, horizon)
    step, floor = cfl / (fine * speed), horizon / MAX_STEPS
    if step < floor:
        raise DataError(f"navier_stokes needs steps of at most {step:.3g} on its {fine}^2 solve grid (resolution "
                        f"{resolution} x refine {refine}; Courant number {cfl:g} at the speed bound {speed:.3g}, "
                        f"amp up to {ranges['amp'][1]:g} over horizon {horizon:g}), below the floor horizon / "
                        f"{MAX_STEPS} = {floor:.3g}: choose a shorter horizon, a coarser resolution or a smaller amp")


def check_decay(system: str, shift: str | Mapping[str, object] | None, horizon: float) -> None:
    """Refuse a horizon over which the diffusing systems' solutions vanish: a frame of zeros has no relative
    error. Mode k decays as exp(-nu |2 pi k|^2 t); the fastest drawn one (|k_x|, |k_y| up to ``MAX_WAVENUMBER``)
    at the largest nu of the ranges must lose at most ``DECAY`` e-folds by t = horizon (heat at ``id``: about 8)."""
    ranges = resolve_time_ranges(system, shift)
    nu = max((r["nu"][1] for r in ranges.values() if "nu" in r), default=0.0)
    limit = DECAY / (nu * (2 * math.pi) ** 2 * 2 * MAX_WAVENUMBER**2) if nu > 0 else math.inf
    if horizon > limit:
        raise DataError(f"{system} solutions (nu up to {nu:g}) decay by more than e^-{DECAY:g} before t = "
                        f"{limit:.3g}, to frames of zeros that have no relative error: use horizon <= {limit:.3g}")


# --- memory ------------------------------------------------------------------------------------------------------


def generated_bytes(n: int, resolution: int, nt: int | None = None, itemsize: int = 4) -> int:
    """Memory ``n`` generated samples take as the generators fill them: steady, the source and the solution on
    the grid and some twenty coefficients and parameters; trajectories (``nt`` frames), the frames and five
    coefficients (``harness.backends.check_host_memory`` checks them against this machine's memory)."""
    cells = resolution * resolution
    return n * (nt * cells * itemsize + 5 * 8 if nt is not None else 2 * cells * itemsize + 20 * 8)
