"""The inline backend: the jobs one after the other in the calling process, as submitit's debug executor does.

Nothing is started: a breakpoint in `run_job` or anything below it stops `harness submit --backend inline`
in the debugger, and an exception a job records as failed can be stepped through with `pdb -m harness.cli`.
Jobs run in plan order (pretraining first), with the job-process settings and the threads a local worker
would have, so the results equal the local backend's; a downstream job whose pretraining did not end ok is
recorded blocked; jobs a sweep packs (`pack:`) train in groups, as on a local worker. A job of several ranks
(`resources`) runs here as one process: the same training (``harness.train.distributed``), equal to its ranks'
result within float rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.backends.local import evaluation_printer, finished, plan_slots
from harness.backends.select import Readiness, disk_states, readiness
from harness.job import Job
from harness.job.fusable import fused_groups
from harness.job.process import apply_job_env
from harness.store import State
from harness.store.folders import disk_state, record_blocked


@dataclass(frozen=True)
class InlineBackend:
    """Runs each job by calling `run_job` here and now, with the CPU threads one of ``workers`` local workers
    would have (so its results equal a local run's with the same ``--workers``); ``verbose`` prints each
    evaluation."""

    workers: int | None = None
    verbose: bool = False

    @classmethod
    def from_options(cls, spec: dict[str, Any], options: dict[str, Any]) -> InlineBackend:
        """From the CLI's --workers and --verbose."""
        return cls(options.get("workers"), bool(options.get("verbose")))

    def status(self, sweep_path: Path, jobs: list[Job]) -> dict[str, State]:
        """The run folders' view (nothing is ever queued)."""
        return disk_states(sweep_path, jobs)

    def submit(self, jobs: list[Job], plan: list[Job], sweep_path: Path) -> str:
        """Run ``jobs`` in order in this process; returns the tally."""
        apply_job_env()  # before torch loads, as in a worker process
        import torch

        from harness.job.run import run_group

        torch.set_num_threads(plan_slots(workers=self.workers)[0].threads)
        state = {job.id: disk_state(sweep_path, job) for job in plan}
        # in plan order, pretraining first: a pretraining has ended before its dependents come, so none waits
        for group in fused_groups(jobs):  # one job each, or groups of one shape where the sweep packs them
            ready = []
            for job in group:
                if job.depends_on is not None and readiness(job, state) is not Readiness.READY:
                    record_blocked(sweep_path, job, state[job.depends_on])
                    state[job.id] = State.BLOCKED
                else:
                    ready.append(job)
            hooks = (lambda job: evaluation_printer(job.id)) if self.verbose else None
            for job, summary in zip(ready, run_group(ready, Path(sweep_path).parent, hooks=hooks), strict=True):
                state[job.id] = State(summary["status"])
        return finished(sweep_path, {job.id: state[job.id] for job in jobs})

    def cancel(self, sweep_path: Path) -> int:
        """Nothing is queued: inline jobs stop with the `harness submit` that runs them."""
        return 0
