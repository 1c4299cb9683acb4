"""One rank of a data-parallel job: ``python -m harness.backends.rank JOB_JSON ROOT`` under torchrun locally, or
``run_rank`` in each task of a Slurm job (``harness.backends.slurm.SlurmTask``). Joins the process group the
launcher describes, runs the job (rank 0 writes its results), and exits non-zero when the job failed, so that
the launcher stops the other ranks."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from harness.job import Job
from harness.job.run import run_job
from harness.store import State
from harness.train.distributed import process_group


def run_rank(job: Job, root: Path) -> None:
    """Run ``job`` under results root ``root`` as this rank of the launcher's process group; ``SystemExit(1)``
    when the job did not end done."""
    with process_group():
        if not State(run_job(job, root)["status"]).is_done():
            raise SystemExit(1)  # out of the group without its barrier: the launcher stops the other ranks


def main(argv: list[str]) -> int:
    """Run the job in file ``argv[0]`` under results root ``argv[1]`` as this rank; returns the exit code."""
    run_rank(Job.from_dict(json.loads(Path(argv[0]).read_text())), Path(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
