"""Where a result came from: the harness source's git revision and the versions, computed in one place.

The git revision has one format whichever backend ran the job: the checkout's commit, 12 hex digits, with
``+dirty`` when the checkout has uncommitted changes, or ``unknown`` outside git. A backend that runs a
snapshot of the code (Slurm) computes it at submit time and passes it on in ``HARNESS_GIT_REV``.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import harness

GIT_REV_ENV = "HARNESS_GIT_REV"


@functools.cache
def git_revision() -> str:
    """The harness source's revision (``HARNESS_GIT_REV`` when a backend pinned it), e.g. ``0123456789ab+dirty``."""
    if os.environ.get(GIT_REV_ENV):
        return os.environ[GIT_REV_ENV]
    here = Path(harness.__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "-C", str(here), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                             text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if rev.returncode or not rev.stdout.strip():
        return "unknown"
    return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def torch_version() -> str:
    """The torch version: the loaded module's, else the installed distribution's (without importing torch)."""
    torch = sys.modules.get("torch")
    if torch is not None:
        return str(torch.__version__)
    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def versions() -> dict[str, str]:
    """The provenance columns of a summary row: torch_version, harness_version, git_rev."""
    return {"torch_version": torch_version(), "harness_version": harness.__version__, "git_rev": git_revision()}
