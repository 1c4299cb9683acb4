"""Backends run a sweep's jobs: `local` (worker processes on this machine) and `slurm` (submitit).

Both pick the jobs to run with `select_jobs`, and both call nothing but `harness.run.run_job` per job.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.store import disk_state

RERUN_STATES = ("missing", "failed", "blocked")


def select_jobs(jobs: list[dict[str, Any]], sweep_path: Path, *, retry_failed: bool = False,
                only: str | None = None) -> list[dict[str, Any]]:
    """The jobs a submit runs: not ok on disk (missing, failed, blocked; diverged too with `retry_failed`).

    A finished (ok) result is never rerun. `only` keeps one stage.
    """
    rerun = (*RERUN_STATES, "diverged") if retry_failed else RERUN_STATES
    return [j for j in jobs if (only is None or j["stage"] == only) and disk_state(sweep_path, j) in rerun]
