"""Saving, loading and caching datasets; train/val/test splits with training-set statistics.

Two kinds of dataset share the format and the cache: steady :class:`PDEData` and trajectories
:class:`TimeData`. A dataset file is an uncompressed ``.npz``: the arrays, ``meta`` (JSON: kind, system,
stats, request) and ``checksum``, the sha256 of every other entry (name, dtype, shape, bytes), verified on
load. Cache files are named by a hash of everything that defines the data and written atomically
(``harness.store.atomic``), so a killed writer never leaves a half file under the final name; a file that fails to
load or verify is reported, deleted and regenerated."""

from __future__ import annotations

import hashlib
import json
import os
import warnings
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from harness.errors import DataError
from harness.pde import DEFAULT_FRAMES, DEFAULT_HORIZON, DEFAULT_REFINE, SPLITS, resolve_ranges
from harness.pde.steady_dataset import GENERATOR_VERSION, PDEData, check_request, compute_stats, generate
from harness.pde.time_dataset import (
    DEFAULT_RESOLUTION,
    TIME_GENERATOR_VERSION,
    TimeData,
    compute_time_stats,
    generate_time,
    time_request,
)
from harness.store.atomic import write_atomic

DEFAULT_CACHE_DIR = "results/.cache/data"
CACHE_ENV = "HARNESS_DATA_CACHE"
# Per kind: the dataclass and its array fields, in constructor order (after ``system``, before ``params``).
_KINDS = {"steady": (PDEData, ("source", "solution", "coefficients", "coef_common")), "time": (TimeData, ("u", "t"))}
_VERSIONS = {"steady": GENERATOR_VERSION, "time": TIME_GENERATOR_VERSION}  # a file of another version is refused


def _checksum(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def _kind(data: PDEData | TimeData) -> str:
    return next(kind for kind, (cls, _) in _KINDS.items() if isinstance(data, cls))


def _entries(data: PDEData | TimeData) -> dict[str, np.ndarray]:
    kind = _kind(data)
    meta = {"kind": kind, "system": data.system, "stats": data.stats, "meta": data.meta}
    entries = {name: getattr(data, name) for name in _KINDS[kind][1]}
    entries.update({f"param_{k}": v for k, v in data.params.items()})
    entries["meta"] = np.array(json.dumps(meta, sort_keys=True))
    return entries


def save(data: PDEData | TimeData, path: str | os.PathLike) -> Path:
    """Write ``data`` to an ``.npz`` at ``path`` atomically (with a checksum); return the path."""
    entries = _entries(data)
    entries["checksum"] = np.array(_checksum(entries))
    return write_atomic(path, lambda fh: np.savez(fh, **entries))


def load(path: str | os.PathLike) -> PDEData | TimeData:
    """Read a dataset written by :func:`save` (either kind); raise DataError if its checksum does not match."""
    with open(path, "rb") as fh:
        npz = np.load(fh, allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise DataError(f"{path} is not an .npz dataset")
        with npz:
            entries = {name: npz[name] for name in npz.files}
    stored = str(entries.pop("checksum", ""))
    if stored != _checksum(entries):
        raise DataError(f"checksum mismatch in {path}")
    meta = json.loads(str(entries["meta"]))
    kind = meta.get("kind", "steady")
    version, current = meta["meta"].get("version"), _VERSIONS[kind]
    if version != current:
        raise DataError(f"{path} was written by {kind} data generator version {version} (another layout); this "
                        f"harness reads version {current}: regenerate it with `harness data`")
    params = {k[len("param_"):]: v for k, v in entries.items() if k.startswith("param_")}
    cls, arrays = _KINDS[kind]
    return cls(meta["system"], *(entries[name] for name in arrays), params, meta["stats"], meta["meta"])


def data_cache(root: str | os.PathLike) -> Path:
    """The data cache of a results root: ``$HARNESS_DATA_CACHE``, else ``<root>/.cache/data`` (its jobs' PDE
    datasets, the fingerprints of its data files)."""
    return Path(os.environ.get(CACHE_ENV) or Path(root) / ".cache" / "data")


def resolve_cache_dir(path: str | os.PathLike | None = None) -> Path:
    """The cache folder: ``path`` if given, else ``$HARNESS_DATA_CACHE``, else ``results/.cache/data``."""
    return Path(path if path is not None else os.environ.get(CACHE_ENV) or DEFAULT_CACHE_DIR)


def split_seed(seed: int, split: str) -> int:
    """The data seed of one split, derived from (seed, split) so the splits are independent draws."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{split}".encode()).digest()[:8], "little") >> 1


def cache_key(request: dict) -> str:
    """A short content hash of a canonical JSON request with its generator's version (the steady generator's
    unless the request names its own)."""
    text = json.dumps({"version": GENERATOR_VERSION, **request}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _load_cached(path: Path) -> PDEData | TimeData | None:
    if not path.exists():
        return None
    try:
        return load(path)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, DataError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        warnings.warn(f"corrupt data cache file {path} ({reason}): deleting and regenerating", stacklevel=3)
        path.unlink(missing_ok=True)
        return None


def split_path(system: str, split: str, n: int, *, shift: str | Sequence[float] | None = None,
               coef_range: Sequence[float] | None = None, resolution: int = 128, seed: int = 0,
               cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache file of a :func:`load_split` request (which may not exist yet)."""
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}: choose one of {', '.join(SPLITS)}")
    ranges = resolve_ranges(system, shift, coef_range)
    n, resolution, seed, _ = check_request(n, resolution, seed, np.float32)
    request = {"system": system, "ranges": {s: list(r) for s, r in ranges.items()}, "n": n,
               "resolution": resolution, "seed": split_seed(seed, split), "split": split, "dtype": "float32"}
    return resolve_cache_dir(cache_dir) / f"{system}-{split}-n{n}-r{resolution}-{cache_key(request)}.npz"


def load_split(system: str, split: str, n: int, *, shift: str | Sequence[float] | None = None,
               coef_range: Sequence[float] | None = None, resolution: int = 128, seed: int = 0,
               cache_dir: str | os.PathLike | None = None) -> PDEData:
    """The ``split`` ("train", "val" or "test") of a dataset, float32, from the cache or generated and cached.

    Each split draws with its own seed (see :func:`split_seed`); a training split carries ``stats``
    (:func:`compute_stats`), other splits have ``stats=None``. A second identical request reads the file.
    """
    path = split_path(system, split, n, shift=shift, coef_range=coef_range, resolution=resolution, seed=seed,
                      cache_dir=cache_dir)

    def make() -> PDEData:
        return generate(system, n, coef_range=coef_range, shift=shift, resolution=resolution,
                        seed=split_seed(seed, split))

    return _cached(path, split, make, compute_stats)


def _cached(path: Path, split: str, make: Callable[[], PDEData | TimeData],
            stats: Callable[[PDEData | TimeData], dict]) -> PDEData | TimeData:
    """The dataset at ``path`` if it loads, else ``make()`` with ``meta["split"]`` and, for a training split,
    ``stats(data)``, saved there."""
    data = _load_cached(path)
    if data is None:
        data = make()
        data.meta["split"] = split
        if split == "train":
            data.stats = stats(data)
        save(data, path)
    return data


def time_split_path(system: str, split: str, n: int, *, shift: str | Mapping[str, object] | None = None,
                    resolution: int = DEFAULT_RESOLUTION, nt: int = DEFAULT_FRAMES,
                    horizon: float = DEFAULT_HORIZON, refine: int = DEFAULT_REFINE, seed: int = 0,
                    cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache file of a :func:`load_time_split` request (which may not exist yet)."""
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}: choose one of {', '.join(SPLITS)}")
    request = time_request(system, shift, n, resolution, nt, horizon, refine, seed, np.float32)
    request.update(seed=split_seed(request["seed"], split), split=split)
    return resolve_cache_dir(cache_dir) / f"{system}-{split}-n{n}-r{resolution}-t{nt}-{cache_key(request)}.npz"


def load_time_split(system: str, split: str, n: int, *, shift: str | Mapping[str, object] | None = None,
                    resolution: int = DEFAULT_RESOLUTION, nt: int = DEFAULT_FRAMES,
                    horizon: float = DEFAULT_HORIZON, refine: int = DEFAULT_REFINE, seed: int = 0,
                    cache_dir: str | os.PathLike | None = None) -> TimeData:
    """The ``split`` of a trajectory dataset (see :func:`~harness.pde.time_dataset.generate_time`), float32,
    from the cache or generated and cached, as :func:`load_split`: each split draws with its own seed, a
    training split carries ``stats`` (:func:`compute_time_stats`). The cache key is the canonical request
    (system, ranges, n, resolution, nt, horizon, refine where Burgers or Navier-Stokes is solved, split seed,
    dtype, generator version). A solve that fails raises DataError and writes nothing."""
    path = time_split_path(system, split, n, shift=shift, resolution=resolution, nt=nt, horizon=horizon,
                           refine=refine, seed=seed, cache_dir=cache_dir)
    data_seed = split_seed(time_request(system, shift, n, resolution, nt, horizon, refine, seed, np.float32)["seed"],
                           split)

    def make() -> TimeData:
        return generate_time(system, n, shift=shift, resolution=resolution, nt=nt, horizon=horizon, refine=refine,
                             seed=data_seed)

    return _cached(path, split, make, compute_time_stats)
