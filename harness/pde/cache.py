"""Saving, loading and caching datasets; train/val/test splits with training-set statistics.

A dataset file is an uncompressed ``.npz``: the arrays, ``meta`` (JSON: system, stats, request) and
``checksum``, the sha256 of every other entry (name, dtype, shape, bytes), verified on load. Cache files are
named by a hash of everything that defines the data and written atomically (``harness.files``), so a
killed writer never leaves a half file under the final name; a file that fails to load or verify is reported,
deleted and regenerated.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from harness.errors import DataError
from harness.files import write_atomic
from harness.pde.dataset import GENERATOR_VERSION, PDEData, check_request, compute_stats, generate
from harness.pde.systems import resolve_ranges

SPLITS = ("train", "val", "test")
DEFAULT_CACHE_DIR = "results/.cache/data"
CACHE_ENV = "HARNESS_DATA_CACHE"
_ARRAYS = ("source", "solution", "coefficients", "coef_common")


def _checksum(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def _entries(data: PDEData) -> dict[str, np.ndarray]:
    meta = {"system": data.system, "stats": data.stats, "meta": data.meta}
    entries = {name: getattr(data, name) for name in _ARRAYS}
    entries.update({f"param_{k}": v for k, v in data.params.items()})
    entries["meta"] = np.array(json.dumps(meta, sort_keys=True))
    return entries


def save(data: PDEData, path: str | os.PathLike) -> Path:
    """Write ``data`` to an ``.npz`` at ``path`` atomically (with a checksum); return the path."""
    entries = _entries(data)
    entries["checksum"] = np.array(_checksum(entries))
    return write_atomic(path, lambda fh: np.savez(fh, **entries))


def load(path: str | os.PathLike) -> PDEData:
    """Read a dataset written by :func:`save`; raise DataError if its checksum does not match."""
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
    params = {k[len("param_"):]: v for k, v in entries.items() if k.startswith("param_")}
    return PDEData(meta["system"], *(entries[name] for name in _ARRAYS), params, meta["stats"], meta["meta"])


def resolve_cache_dir(path: str | os.PathLike | None = None) -> Path:
    """The cache folder: ``path`` if given, else ``$HARNESS_DATA_CACHE``, else ``results/.cache/data``."""
    return Path(path if path is not None else os.environ.get(CACHE_ENV) or DEFAULT_CACHE_DIR)


def split_seed(seed: int, split: str) -> int:
    """The data seed of one split, derived from (seed, split) so the splits are independent draws."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{split}".encode()).digest()[:8], "little") >> 1


def cache_key(request: dict) -> str:
    """A short content hash of a canonical JSON request (with the generator version)."""
    text = json.dumps({**request, "version": GENERATOR_VERSION}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _load_cached(path: Path) -> PDEData | None:
    if not path.exists():
        return None
    try:
        return load(path)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, DataError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        warnings.warn(f"corrupt data cache file {path} ({reason}): deleting and regenerating", stacklevel=3)
        path.unlink(missing_ok=True)
        return None


def load_split(system: str, split: str, n: int, *, shift: str | Sequence[float] | None = None,
               coef_range: Sequence[float] | None = None, resolution: int = 128, seed: int = 0,
               cache_dir: str | os.PathLike | None = None) -> PDEData:
    """The ``split`` ("train", "val" or "test") of a dataset, float32, from the cache or generated and cached.

    Each split draws with its own seed (see :func:`split_seed`); a training split carries ``stats``
    (:func:`compute_stats`), other splits have ``stats=None``. A second identical request reads the file.
    """
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}: choose one of {', '.join(SPLITS)}")
    ranges = resolve_ranges(system, shift, coef_range)
    n, resolution, seed, _ = check_request(n, resolution, seed, np.float32)
    data_seed = split_seed(seed, split)
    request = {"system": system, "ranges": {s: list(r) for s, r in ranges.items()}, "n": n,
               "resolution": resolution, "seed": data_seed, "split": split, "dtype": "float32"}
    path = resolve_cache_dir(cache_dir) / f"{system}-{split}-n{n}-r{resolution}-{cache_key(request)}.npz"
    data = _load_cached(path)
    if data is None:
        data = generate(system, n, coef_range=coef_range, shift=shift, resolution=resolution, seed=data_seed)
        data.meta["split"] = split
        if split == "train":
            data.stats = compute_stats(data)
        save(data, path)
    return data

