"""Batched, prefix-stable generation of trajectory datasets: ``generate_time(system, n, ...) -> TimeData``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from harness.backends import check_host_memory
from harness.pde import (
    ALL_TIME_SYSTEMS,
    DEFAULT_FRAMES,
    DEFAULT_HORIZON,
    DEFAULT_REFINE,
    NAVIER_STOKES,
    TIME_CHANNELS,
    TIME_MIXED,
    TIME_SYSTEMS,
    check_steps,
    check_time_request,
    generated_bytes,
    model_coefs,
    resolve_time_ranges,
)
from harness.pde.steady_dataset import BLOCK, check_request, fill_blocks, stream_tag
from harness.pde.time_systems import sample_time_block

# Bump whenever a change alters the trajectories a given request produces (it keys the cache).
TIME_GENERATOR_VERSION = 1
DEFAULT_RESOLUTION = 32  # the paper's configs train on 32 x 32 x 32 (frames x grid)


@dataclass
class TimeData:
    """A dataset of n trajectories of nt frames on an R x R grid.

    ``u``: (n, nt, R, R), frame j at time ``t[j]``; ``t``: (nt,) float64 from 0 to the horizon;
    ``params``: float64 coefficients ``nu, ax, ay, cx, cy`` (n,) (the paper's file keys; zero where the
    system lacks one), ``visc, amp`` for navier_stokes, and ``system`` (n,) int, the index in
    ``ALL_TIME_SYSTEMS``;
    ``stats``: training-set statistics (:func:`compute_time_stats`) or None;
    ``meta``: what the data was generated from (ranges, resolution, frames, horizon, refine, seed, version).
    """

    system: str
    u: np.ndarray
    t: np.ndarray
    params: dict[str, np.ndarray]
    stats: dict | None = None
    meta: dict = field(default_factory=dict)

    @property
    def channels(self) -> tuple[str, ...]:
        """Names of the ``coefficients`` columns."""
        return TIME_CHANNELS[self.system]

    @property
    def coefficients(self) -> np.ndarray:
        """(n, C) float64 in ``channels`` order (the system's own coefficients; all five under mixed_time)."""
        return np.stack([self.params[c] for c in self.channels], axis=1)

    @property
    def coef_common(self) -> np.ndarray:
        """(n, C) float64 in ``model_coefs(system)`` order, the model's coefficient channels: the five
        ``TIME_COEFS``, zeros where a system lacks the coefficient; visc, amp for navier_stokes."""
        return np.stack([self.params[c] for c in model_coefs(self.system)], axis=1)

    def __len__(self) -> int:
        return len(self.u)


def time_request(system: str, shift: str | Mapping[str, object] | None, n: int, resolution: int, nt: int,
                 horizon: float, refine: int, seed: int, dtype: type) -> dict:
    """The canonical, validated description of a request (JSON-able): what defines its samples.

    ``refine`` is kept only where Burgers or Navier-Stokes is solved, so heat and advection data do not depend
    on it. Navier-Stokes' CFL-bounded step must stay above its floor (``harness.pde.check_steps``).
    """
    ranges = resolve_time_ranges(system, shift)
    n, resolution, seed, dtype = check_request(n, resolution, seed, dtype)
    nt, horizon, refine = check_time_request(nt, horizon, refine)
    request = {"system": system, "ranges": {s: {k: list(v) for k, v in r.items()} for s, r in ranges.items()},
               "n": n, "resolution": resolution, "nt": nt, "horizon": horizon, "seed": seed,
               "dtype": np.dtype(dtype).name, "version": TIME_GENERATOR_VERSION}
    if NAVIER_STOKES in ranges:
        check_steps(ranges[NAVIER_STOKES], resolution, horizon, refine)
    if "burgers" in ranges or NAVIER_STOKES in ranges:
        request["refine"] = refine
    return request


def _generate_into(out: dict[str, np.ndarray], n_total: int, system: str, rows: range, ranges: dict,
                   request: dict, t: np.ndarray) -> None:
    dtype = np.dtype(request["dtype"]).type
    refine = request.get("refine", 1)

    def make_block(rng: np.random.Generator, start: int, keep: int) -> dict[str, np.ndarray]:
        part = sample_time_block(system, rng, BLOCK, keep, ranges, t, request["resolution"], refine, dtype)
        part["system"] = np.full(keep, ALL_TIME_SYSTEMS.index(system))
        return part

    tag = stream_tag(f"time:{system}:{json.dumps(ranges, sort_keys=True)}")
    fill_blocks(out, n_total, rows, request["seed"], tag, make_block)


def generate_time(system: str, n: int, *, shift: str | Mapping[str, object] | None = None,
                  resolution: int = DEFAULT_RESOLUTION, nt: int = DEFAULT_FRAMES, horizon: float = DEFAULT_HORIZON,
                  refine: int = DEFAULT_REFINE, seed: int = 0, dtype: type = np.float32) -> TimeData:
    """Generate ``n`` trajectories of ``system`` (one of ``ALL_TIME_SYSTEMS`` or ``mixed_time``): ``nt`` frames
    evenly spaced over ``[0, horizon]`` on a ``resolution``^2 grid.

    Coefficients come from a named ``shift`` level (``TIME_SHIFT_LEVELS``; ``id`` by default) or an explicit
    ``{param: [lo, hi]}``. ``mixed_time`` interleaves the three systems at one level name: sample i is sample
    i // 3 of ``TIME_SYSTEMS[i % 3]`` (the same as that system's own dataset with this seed).
    Prefix-stable: sample i depends on (system, ranges, resolution, nt, horizon, refine, seed, i), not on n.
    Solves are float64 (heat and advection exact; Burgers and Navier-Stokes ETDRK4 on a ``refine`` times finer
    grid), returned in ``dtype``. A solve that turns unstable raises DataError naming the coefficients.
    """
    request = time_request(system, shift, n, resolution, nt, horizon, refine, seed, dtype)
    check_host_memory(generated_bytes(request["n"], request["resolution"], request["nt"], np.dtype(dtype).itemsize),
                 f"generating {request['n']} {system} trajectories of {request['nt']} frames at "
                 f"{request['resolution']}x{request['resolution']}")
    ranges = resolve_time_ranges(system, shift)
    t = np.linspace(0.0, request["horizon"], request["nt"])
    out: dict[str, np.ndarray] = {}
    if system != TIME_MIXED:
        _generate_into(out, request["n"], system, range(request["n"]), ranges[system], request, t)
    else:
        for i, s in enumerate(TIME_SYSTEMS[:request["n"]]):
            _generate_into(out, request["n"], s, range(i, request["n"], 3), ranges[s], request, t)
    params = {k: out[k] for k in (*model_coefs(system), "system")}
    return TimeData(system, out["u"], t, params, meta=request)


def compute_time_stats(data: TimeData) -> dict:
    """Statistics of a training set: ``median_u_norm``, the median over samples of the RMS of u over all
    frames and the grid; ``coef_scale``, per ``model_coefs`` entry, the median |value| over the samples whose
    system has it (0 if none has it)."""
    rms = np.sqrt(np.mean(np.square(data.u, dtype=np.float64), axis=(1, 2, 3)))
    systems = np.asarray(ALL_TIME_SYSTEMS)[data.params["system"]]
    scale = []
    for c in model_coefs(data.system):
        present = np.isin(systems, [s for s in ALL_TIME_SYSTEMS if c in TIME_CHANNELS[s]])
        scale.append(float(np.median(np.abs(data.params[c][present]))) if present.any() else 0.0)
    return {"median_u_norm": float(np.median(rms)), "coef_scale": scale}
