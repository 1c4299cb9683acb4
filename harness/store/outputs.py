"""The files and folders a user names with ``--out`` (``harness data``, ``show``, ``report``, and the front door's
``out``): written only where they were meant to be. A file ends in its format's suffix, its folder exists (none
is made) and it is new unless ``force``; a report folder is new, or one a report was written to.
"""

from __future__ import annotations

from pathlib import Path

from harness.errors import HarnessError


def _listed(suffixes: tuple[str, ...]) -> str:
    return ", ".join(suffixes[:-1]) + f" or {suffixes[-1]}" if len(suffixes) > 1 else suffixes[0]


def new_file(path: Path, suffixes: tuple[str, ...], force: bool, command: str) -> Path:
    """An ``--out`` file of ``command``: it ends in one of ``suffixes``, its folder exists (none is made), and it
    does not exist yet unless ``force``."""
    if path.is_dir():
        raise HarnessError(f"--out {path} is a folder: name a file in it ending in {_listed(suffixes)}")
    if path.suffix not in suffixes:
        raise HarnessError(f"--out {path}: {command} writes {_listed(suffixes)} files: end the name in "
                           f"{'one of them' if len(suffixes) > 1 else suffixes[0]}")
    if not path.parent.is_dir():
        raise HarnessError(f"--out {path}: folder {path.parent} does not exist: create it first (--out makes no "
                           "folders)")
    if (path.exists() or path.is_symlink()) and not force:
        raise HarnessError(f"--out {path} exists: pass --force to overwrite it, or name a new file")
    return path


def report_folder(path: Path | None, force: bool) -> Path | None:
    """An ``--out`` folder of `harness report`: new in a folder that exists, or one a report was written to (any
    other folder with ``force``)."""
    if path is None:
        return None
    if path.exists() and not path.is_dir():
        raise HarnessError(f"--out {path} is a file, not a folder: name the report folder (a new one, or one a "
                           "report was written to)")
    if not path.parent.is_dir():
        raise HarnessError(f"--out {path}: folder {path.parent} does not exist: create it first (--out makes no "
                           "folders)")
    if path.is_dir() and any(path.iterdir()) and not (path / "report.html").is_file() and not force:
        raise HarnessError(f"--out {path} holds other files: name a new folder (or one a report was written to), "
                           "or pass --force to write the report among them")
    return path
