"""Which jobs a submit runs, the same rule for every backend, from a backend's view of the job states."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.store import State
from harness.store.folders import disk_state


@dataclass(frozen=True)
class Selection:
    """The jobs to run or queue (plan order, pretraining first), and those that need a run but cannot have one:
    (job, its pretraining job's state) for a pretraining that is neither ok, queued, running, nor sent now."""

    todo: list[dict[str, Any]] = field(default_factory=list)
    blocked: list[tuple[dict[str, Any], State]] = field(default_factory=list)


def select(plan: list[dict[str, Any]], states: dict[str, State], *, retry_failed: bool = False,
           only: str | None = None) -> Selection:
    """The jobs of ``plan`` a submit runs: those whose state ``needs_run`` (missing, failed, blocked, cancelled,
    timed out, preempted; diverged too with ``retry_failed``), of stage ``only`` if given. A finished (ok) or
    pruned result is never rerun, nor a queued or running job. A downstream job whose pretraining job is not
    ok, active, nor chosen in this same selection goes to ``blocked``."""
    chosen: set[str] = set()
    out = Selection()
    for job in plan:
        state = states.get(job["id"], State.MISSING)
        if (only is not None and job["stage"] != only) or not state.needs_run(retry_failed=retry_failed):
            continue
        dep = job.get("depends_on")
        dep_state = states.get(dep, State.MISSING) if dep else State.OK
        if dep and dep not in chosen and not (dep_state is State.OK or dep_state.is_active()):
            out.blocked.append((job, dep_state))
            continue
        chosen.add(job["id"])
        out.todo.append(job)
    return out


def disk_states(sweep_path: Path, jobs: list[dict[str, Any]]) -> dict[str, State]:
    """dict[str, Any] id -> state as the run folders say (the whole view of a backend without a queue)."""
    return {job["id"]: disk_state(sweep_path, job) for job in jobs}
