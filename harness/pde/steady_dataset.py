"""Batched, prefix-stable generation of PDE datasets: ``generate(system, n, ...) -> PDEData``."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from harness.backends import check_host_memory
from harness.errors import DataError
from harness.pde import CHANNELS, COMMON_CHANNELS, MIXED, SYSTEMS, generated_bytes, resolve_ranges
from harness.pde.steady_sources import vf_of
from harness.pde.steady_systems import sample_block

# Bump whenever a change alters the samples a given request produces (it keys the cache).
GENERATOR_VERSION = 2  # 2: helmholtz K channels, every sample solved from its channels
# Samples per independently seeded block: sample i comes from block i // BLOCK, whatever n is. Blocks are
# also the unit of work: 16 samples' float64 spectra at 128^2 (~2 MB) stay in cache, about twice as fast as
# 256-sample blocks.
BLOCK = 16
PARAMS = ("e", "theta", "psi", "lam", "v", "omega", "vf")
DTYPES = (np.float32, np.float64)


@dataclass
class PDEData:
    """A dataset of n samples on an R x R grid.

    ``source``, ``solution``: (n, R, R); ``coefficients``: (n, C) in ``CHANNELS[system]`` order;
    ``coef_common``: (n, 6) in ``COMMON_CHANNELS`` order, zeros where a system lacks the channel;
    ``params``: float64 per-sample arrays ``e, theta, psi, lam, omega, vf`` (n,) and ``v`` (n, 2), NaN where
    the system has no such parameter, plus ``system`` (n,) int, the index in ``SYSTEMS`` (``psi`` is the drawn
    target ratio, which the solution realises to ~1e-13);
    ``stats``: training-set normalisation statistics (see :func:`compute_stats`) or None;
    ``meta``: what the data was generated from (ranges, resolution, seed, generator version).
    """

    system: str
    source: np.ndarray
    solution: np.ndarray
    coefficients: np.ndarray
    coef_common: np.ndarray
    params: dict[str, np.ndarray]
    stats: dict | None = None
    meta: dict = field(default_factory=dict)

    @property
    def channels(self) -> tuple[str, ...]:
        """Names of the ``coefficients`` columns."""
        return CHANNELS[self.system]

    def __len__(self) -> int:
        return len(self.source)


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise DataError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_request(n: object, resolution: object, seed: object, dtype: object) -> tuple[int, int, int, type]:
    """Validate (n, resolution, seed, dtype) of a data request; raise DataError naming a bad value."""
    n = _check_int("n", n, 1)
    if isinstance(resolution, bool) or not isinstance(resolution, int | np.integer) or resolution < 8 or resolution % 2:
        raise DataError(f"resolution must be an even integer >= 8, got {resolution!r}")
    seed = _check_int("seed", seed, 0)
    try:
        dtype = np.dtype(dtype).type
    except TypeError:
        dtype = None
    if dtype not in DTYPES:
        raise DataError(f"dtype must be float32 or float64, got {dtype!r}")
    return n, int(resolution), seed, dtype


def stream_tag(text: str) -> int:
    """A 32-bit integer naming a random stream (e.g. a system and its ranges), so different ranges draw
    independent samples."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")


def fill_blocks(out: dict[str, np.ndarray], n_total: int, rows: range, seed: int, tag: int,
                make_block: Callable[[np.random.Generator, int, int], dict[str, np.ndarray]]) -> None:
    """Generate ``len(rows)`` samples block by block, writing the j-th to row ``rows[j]`` of ``out``'s arrays
    (created on first use with ``n_total`` rows). Block k is ``make_block(rng, start, keep)`` with ``rng``
    seeded by (seed, tag, k), ``start = k * BLOCK`` and ``keep`` its number of samples (``BLOCK`` but in the
    last block); ``make_block`` must draw for a whole block whatever ``keep``, so that generation is
    prefix-stable."""
    for block, start in enumerate(range(0, len(rows), BLOCK)):
        keep = min(BLOCK, len(rows) - start)
        rng = np.random.default_rng(np.random.SeedSequence([seed, tag, block]))
        part = make_block(rng, start, keep)
        block_rows = rows[start:start + keep]
        where = slice(block_rows.start, block_rows.stop, block_rows.step)
        for key, value in part.items():
            if key not in out:
                out[key] = np.empty((n_total, *value.shape[1:]), value.dtype)
            out[key][where] = value


def _generate_into(out: dict[str, np.ndarray], n_total: int, system: str, rows: range, lo: float, hi: float,
                   resolution: int, seed: int, dtype: type, common_layout: bool) -> None:
    """Generate ``len(rows)`` samples of ``system`` into rows ``rows`` of ``out`` (see :func:`fill_blocks`);
    ``common_layout`` stores coef_common as coefficients."""

    def make_block(rng: np.random.Generator, start: int, keep: int) -> dict[str, np.ndarray]:
        part = sample_block(system, rng, vf_of(np.arange(BLOCK)), keep, lo, hi, resolution, dtype)
        part["vf"] = vf_of(np.arange(start, start + keep))
        part["system"] = np.full(keep, SYSTEMS.index(system))
        if common_layout:
            part["coefficients"] = part["coef_common"]
        return part

    tag = stream_tag(f"{system}:{float(lo)!r}:{float(hi)!r}")
    fill_blocks(out, n_total, rows, seed, tag, make_block)


def generate(system: str, n: int, *, coef_range: Sequence[float] | None = None,
             shift: str | Sequence[float] | None = None, resolution: int = 128, seed: int = 0,
             dtype: type = np.float32) -> PDEData:
    """Generate ``n`` samples of ``system`` (one of ``SYSTEMS`` or ``"mixed"``) on a ``resolution``^2 grid.

    The shifted coefficient (poisson e, advection_diffusion Psi, helmholtz omega) is drawn from a named
    ``shift`` level (``SHIFT_LEVELS``; ``id`` by default) or an explicit ``[lo, hi]`` (``shift`` or
    ``coef_range``). ``mixed`` interleaves the three systems at one named level: sample i is sample i // 3
    of system ``SYSTEMS[i % 3]`` (the same as that system's own dataset with this seed).
    Prefix-stable: sample i depends on (system, range, resolution, seed, i), not on n. Solutions are exact
    spectral solves in float64, returned in ``dtype``. Works block by block: memory beyond the returned
    arrays stays a few MB.
    """
    ranges = resolve_ranges(system, shift, coef_range)
    n, resolution, seed, dtype = check_request(n, resolution, seed, dtype)
    check_host_memory(generated_bytes(n, resolution, itemsize=np.dtype(dtype).itemsize),
                 f"generating {n} {system} samples at {resolution}x{resolution}")
    meta = {"system": system, "ranges": {s: list(r) for s, r in ranges.items()}, "n": n, "resolution": resolution,
            "seed": seed, "dtype": np.dtype(dtype).name, "version": GENERATOR_VERSION}
    out: dict[str, np.ndarray] = {}
    if system != MIXED:
        _generate_into(out, n, system, range(n), *ranges[system], resolution, seed, dtype, common_layout=False)
    else:
        for i, s in enumerate(SYSTEMS[:n]):
            _generate_into(out, n, s, range(i, n, 3), *ranges[s], resolution, seed, dtype, common_layout=True)
    params = {k: out[k] for k in (*PARAMS, "system")}
    return PDEData(system, out["source"], out["solution"], out["coefficients"], out["coef_common"], params,
                   meta=meta)


# Which common channels each system has (stats ignore a channel on samples of systems without it).
_HAS_CHANNEL = np.array([[c in CHANNELS[s] for c in COMMON_CHANNELS] for s in SYSTEMS])


def present_channels(system: np.ndarray) -> np.ndarray:
    """(n, len(COMMON_CHANNELS)) bool: which common channels each sample's system (index in SYSTEMS) has."""
    return _HAS_CHANNEL[np.asarray(system)]


def median_rms(fields: np.ndarray) -> float:
    """Median over samples of the RMS of a field (n, R, R), sqrt(mean over the grid of f^2): ||f||_2 on the
    unit square. Accumulated in float64, 64 samples at a time (each sample's value does not depend on the
    block, and the float64 copy stays small)."""
    rms = [np.sqrt(np.mean(np.square(fields[s:s + 64], dtype=np.float64), axis=(1, 2)))
           for s in range(0, len(fields), 64)]
    return float(np.median(np.concatenate(rms)))


def coefficient_scales(coefficients: np.ndarray, present: np.ndarray) -> list[float]:
    """Per column of ``coefficients`` (n, C): median |value| over the samples where ``present`` (n, C) is
    true (0 if none is)."""
    return [float(np.median(np.abs(coefficients[present[:, c], c]))) if present[:, c].any() else 0.0
            for c in range(coefficients.shape[1])]


def compute_stats(data: PDEData) -> dict:
    """Normalisation statistics of a training set.

    ``median_source_norm``: :func:`median_rms` of the sources; ``coef_scale``: per common channel, median
    |value| over the samples whose system has that channel (0 if none has it).
    """
    return {"median_source_norm": median_rms(data.source),
            "coef_scale": coefficient_scales(data.coef_common, present_channels(data.params["system"]))}
