"""Which jobs a submit runs, and whether a job's pretraining lets it run: the same rules for every backend, from a
backend's view of the job states."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from harness.job import Job
from harness.store import State
from harness.store.folders import disk_state


class Readiness(str, Enum):
    """What a job's pretraining says about running it (``readiness``)."""

    READY = "ready"  # no pretraining, or it ended ok
    WAITING = "waiting"  # its pretraining is queued, running, or being sent now
    BLOCKED = "blocked"  # its pretraining can no longer end ok without another submit

    __hash__ = str.__hash__

    def __str__(self) -> str:
        return self.value


def readiness(job: Job, states: Mapping[str, State], sending: Collection[str] = (), *,
              absent: State = State.MISSING) -> Readiness:
    """Whether ``job`` can run as far as its pretraining is concerned: ready when it has none or that one is ok
    (in ``states``; ``absent``: the state of one not in it), waiting while it is pending or running, or one of the
    ids being sent (``sending``), blocked otherwise (failed, diverged, blocked, cancelled, ... or missing and not
    sent): the one rule of every backend."""
    if job.depends_on is None:
        return Readiness.READY
    state = states.get(job.depends_on, absent)
    if state is State.OK:
        return Readiness.READY
    if state.is_active() or job.depends_on in sending:
        return Readiness.WAITING
    return Readiness.BLOCKED


@dataclass(frozen=True)
class Selection:
    """The jobs to run or queue (plan order, pretraining first), and those that need a run but cannot have one:
    (job, its pretraining job's state) for a pretraining that is neither ok, queued, running, nor sent now."""

    todo: list[Job] = field(default_factory=list)
    blocked: list[tuple[Job, State]] = field(default_factory=list)


def select(plan: list[Job], states: dict[str, State], *, retry_failed: bool = False,
           only: str | None = None) -> Selection:
    """The jobs of ``plan`` a submit runs: those whose state ``needs_run`` (missing, failed, blocked, cancelled,
    timed out, preempted; diverged too with ``retry_failed``), of stage ``only`` if given. A finished (ok) or
    pruned result is never rerun, nor a queued or running job. A downstream job whose pretraining is
    ``readiness``-blocked, counting the jobs chosen in this same selection as sent, goes to ``blocked``."""
    chosen: set[str] = set()
    out = Selection()
    for job in plan:
        state = states.get(job.id, State.MISSING)
        if (only is not None and job.stage != only) or not state.needs_run(retry_failed=retry_failed):
            continue
        if readiness(job, states, chosen) is Readiness.BLOCKED:
            assert job.depends_on is not None
            out.blocked.append((job, states.get(job.depends_on, State.MISSING)))
            continue
        chosen.add(job.id)
        out.todo.append(job)
    return out


def disk_states(sweep_path: Path, jobs: list[Job]) -> dict[str, State]:
    """Job id -> state as the run folders say (the whole view of a backend without a queue)."""
    return {job.id: disk_state(sweep_path, job) for job in jobs}
