"""The one atomic file writer: every file the harness writes (Parquet, JSON, checkpoints, data cache, reports).

``write_atomic(path, write)`` hands ``write`` an open binary file under a temporary name in the same folder
(``.<name>.<random>.tmp``), flushes and fsyncs it, then renames it over ``path``: a reader sees the old file or
the new one, never a torn one, and a killed writer leaves at most its temporary file, which carries no final
name. On any failure (an exception, KeyboardInterrupt) the temporary file is removed and the error re-raised (an
OSError without a file name, such as a full disk's, with ``path`` as its name).
Standard library only, so every layer can use it.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_CREATE_MODE = 0o666 & ~_umask()  # read once at import: os.umask can only be read by setting it

def write_atomic(path: str | os.PathLike, write: Callable[[IO[bytes]], Any]) -> Path:
    """Write ``path`` atomically through ``write(binary file)`` (open for reading too, seekable); returns the
    path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, _CREATE_MODE)  # mkstemp makes it 0600; a file written plainly gets 0666 less the umask
        with os.fdopen(fd, "w+b") as fh:  # readable too: HDF5 reads back what it writes
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno and not exc.filename:  # name the file (a full disk says none)
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
        raise
    return path


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return write_atomic(path, lambda fh: fh.write(data))


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return write_bytes_atomic(path, text.encode())


def write_json_atomic(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON with sorted keys (anything else as its ``str``), atomically."""
    return write_text_atomic(path, json.dumps(obj, indent=1, sort_keys=True, default=str))
