"""Checkpoint files, written through the one atomic writer (``harness.store.atomic``), read back with clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from harness.errors import HarnessError
from harness.store.atomic import write_atomic


def save_atomic(obj: Any, path: Path | str) -> None:
    """``torch.save`` ``obj`` to ``path`` so that a reader sees the old file or the new one, never a torn one."""
    write_atomic(path, lambda fh: torch.save(obj, fh))


def load(path: Path | str) -> dict[str, Any]:
    """Load a checkpoint written by ``save_atomic`` onto the CPU (tensors, containers and plain values only).

    Raises ``HarnessError`` naming the file and the fix when it is missing, truncated or not a checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise HarnessError(f"no checkpoint at {path}: train the model first or fix the path")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types (EOFError, RuntimeError, UnpicklingError...)
        raise HarnessError(
            f"checkpoint {path} is corrupt or truncated ({type(exc).__name__}: {exc}); "
            "delete it to start that run again from scratch"
        ) from exc
    if not isinstance(obj, dict):
        raise HarnessError(f"checkpoint {path} holds a {type(obj).__name__}, not a dict; delete it and rerun")
    return obj
