"""Content fingerprints of data files, computed once per file version and cached.

A fingerprint is a short sha256 over the file's size, its modification time and a sample of its bytes: the
first MiB (HDF5 superblock and root metadata, a zip's first member header) and ``SAMPLES`` evenly spaced
64 KiB chunks, the last ending at the end of the file. Replacing or editing a file changes its mtime, so the
fingerprint changes even where the sampled bytes do not (copy data with ``cp -p`` / ``rsync -t`` to keep
it). Fingerprints are cached in ``fingerprints.json`` in the data cache folder (the results root's: ``expand``
and a job pass it; else ``$HARNESS_DATA_CACHE``; else none, and nothing is written), keyed by (real path, size,
mtime, inode): an unchanged file costs one ``stat``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from harness.errors import DataFileError
from harness.pde.cache import CACHE_ENV
from harness.store.atomic import write_json_atomic

HEAD_BYTES = 1 << 20
CHUNK_BYTES = 1 << 16
SAMPLES = 64
CACHE_FILE = "fingerprints.json"
CACHE_ENTRIES = 1000  # newest kept; a cache, so a lost entry only costs one recomputation


def stat_key(path: str | os.PathLike) -> str:
    """``real path|size|mtime_ns|inode`` of a file: what changes when the file is replaced or written."""
    real = os.path.realpath(path)
    try:
        st = os.stat(real)
    except FileNotFoundError as err:
        raise DataFileError(f"{path} does not exist: check the path") from err
    except OSError as err:
        raise DataFileError(f"{path} cannot be read ({err.strerror}): check the path") from err
    return f"{real}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}"


def _digest(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256(f"{size}|{mtime_ns}|".encode())
    with open(path, "rb") as fh:
        h.update(fh.read(HEAD_BYTES))
        if size > HEAD_BYTES:
            span = size - HEAD_BYTES - CHUNK_BYTES
            for i in range(SAMPLES):
                fh.seek(HEAD_BYTES + max(0, span) * (i + 1) // SAMPLES)
                h.update(fh.read(CHUNK_BYTES))
    return h.hexdigest()[:16]


def _read_cache(path: Path) -> dict[str, str]:
    """The cache as {stat key: fingerprint}, oldest first (stored as a list of pairs to keep that order)."""
    try:
        return {str(k): str(v) for k, v in json.loads(path.read_text())["entries"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def fingerprint(path: str | os.PathLike, *, cache_dir: str | os.PathLike | None = None) -> str:
    """The content fingerprint of the file at ``path`` (16 hex digits), from the cache in ``cache_dir`` (None:
    ``$HARNESS_DATA_CACHE``, else no cache) when the file's (path, size, mtime, inode) is unchanged. Raises
    DataFileError if the file changes while it is read."""
    key = stat_key(path)
    folder = cache_dir if cache_dir is not None else os.environ.get(CACHE_ENV)
    cache_path = Path(folder) / CACHE_FILE if folder else None
    cache = _read_cache(cache_path) if cache_path else {}
    if key in cache:
        return cache[key]
    real, size, mtime_ns, _ = key.rsplit("|", 3)
    value = _digest(real, int(size), int(mtime_ns))
    if stat_key(path) != key:
        raise DataFileError(f"{path} changed while its fingerprint was taken: wait until it is fully written")
    if cache_path is None:
        return value
    cache = _read_cache(cache_path)  # re-read: another process may have added entries meanwhile
    cache.pop(key, None)
    cache[key] = value
    write_json_atomic(cache_path, {"entries": list(cache.items())[-CACHE_ENTRIES:]})
    return value


def combined(fingerprints: list[str]) -> str:
    """One fingerprint over several files' (in the given order)."""
    if len(fingerprints) == 1:
        return fingerprints[0]
    return hashlib.sha256("|".join(fingerprints).encode()).hexdigest()[:16]
