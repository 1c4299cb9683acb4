"""Stale runs: run folders whose job id is no longer in the sweep's plan (the sweep file was edited and
re-expanded). They stay on disk until ``harness gc --stale`` removes them, and are left out of results.parquet,
``harness status`` and the report."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from harness.job import Job
from harness.store.folders import run_dir

STALE_NOTE = "stale: {n} runs not in the current plan (kept on disk; `harness gc --stale` removes them)"


def stale_runs(sweep_path: Path, jobs: list[Job]) -> list[str]:
    """The run folder names under ``sweep_path``/runs that are not jobs of the plan, sorted."""
    runs = Path(sweep_path) / "runs"
    planned = {job.id for job in jobs}
    try:
        names = [e.name for e in os.scandir(runs) if e.is_dir()]
    except OSError:
        return []
    return sorted(name for name in names if name not in planned)


def stale_note(sweep_path: Path, jobs: list[Job]) -> str:
    """The line that lists stale runs ("" when there are none)."""
    stale = stale_runs(sweep_path, jobs)
    return STALE_NOTE.format(n=len(stale)) if stale else ""


def remove_stale(sweep_path: Path, jobs: list[Job]) -> list[str]:
    """Delete the stale run folders; returns their names."""
    stale = stale_runs(sweep_path, jobs)
    for name in stale:
        shutil.rmtree(run_dir(sweep_path, name))
    return stale
