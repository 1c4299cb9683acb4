"""Stale runs: run folders whose job id is no longer in the sweep's plan (the sweep file was edited and
re-expanded). They stay on disk until ``harness gc --stale`` removes them, and are left out of results.parquet,
``harness status`` and the report. Removal never follows a symbolic link: a stale entry that is one is unlinked
(what it points to stays), and a ``runs`` folder that is one is refused."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from harness.errors import HarnessError
from harness.job import Job
from harness.store.folders import run_dir

STALE_NOTE = "stale: {n} runs not in the current plan (kept on disk; `harness gc --stale` removes them)"


def stale_runs(sweep_path: Path, jobs: list[Job]) -> list[str]:
    """The run folder names under ``sweep_path``/runs that are not jobs of the plan (folders, or links), sorted."""
    runs = Path(sweep_path) / "runs"
    planned = {job.id for job in jobs}
    try:
        names = [e.name for e in os.scandir(runs) if e.is_dir() or e.is_symlink()]
    except OSError:
        return []
    return sorted(name for name in names if name not in planned)


def stale_note(sweep_path: Path, jobs: list[Job]) -> str:
    """The line that lists stale runs ("" when there are none)."""
    stale = stale_runs(sweep_path, jobs)
    return STALE_NOTE.format(n=len(stale)) if stale else ""


def remove_stale(sweep_path: Path, jobs: list[Job]) -> list[str]:
    """Delete the stale run folders (a link: the link only); returns their names."""
    runs = Path(sweep_path) / "runs"
    if runs.is_symlink():
        raise HarnessError(f"{runs} is a symbolic link to {os.readlink(runs)}: gc removes nothing through links; "
                           "remove the stale runs there by hand")
    stale = stale_runs(sweep_path, jobs)
    for name in stale:
        path = run_dir(sweep_path, name)
        if path.is_symlink():
            path.unlink()
        else:
            shutil.rmtree(path)
    return stale
