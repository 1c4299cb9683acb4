"""Backends run a sweep's jobs: `local` (worker processes on this machine) and `slurm` (submitit).

Both pick the jobs to run with `select_jobs`, and both call nothing but `harness.run.run_job` per job.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.store import disk_state

RERUN_STATES = ("missing", "failed", "blocked", "cancelled", "timeout", "preempted")


def select_jobs(jobs: list[dict[str, Any]], sweep_path: Path, *, retry_failed: bool = False,
                only: str | None = None, states: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The jobs a submit runs: missing, failed, blocked, cancelled, timed out or preempted (diverged too
    with `retry_failed`). A finished (ok) or pruned result is never rerun, nor a queued or running job.

    `states` is a backend's view (job id -> state, e.g. Slurm's merged with the disk); default the disk's.
    `only` keeps one stage.
    """
    if states is None:
        states = {j["id"]: disk_state(sweep_path, j) for j in jobs}
    rerun = (*RERUN_STATES, "diverged") if retry_failed else RERUN_STATES
    return [j for j in jobs if (only is None or j["stage"] == only) and states.get(j["id"], "missing") in rerun]
