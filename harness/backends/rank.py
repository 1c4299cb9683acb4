"""One rank of a data-parallel job: ``python -m harness.backends.rank JOB_JSON ROOT`` under a launcher (torchrun
locally, ``srun`` tasks on Slurm). Joins the process group the launcher describes, runs the job (rank 0 writes
its results), and exits non-zero when the job failed, so that the launcher stops the other ranks."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch.distributed as dist

from harness.run import run_job
from harness.states import State
from harness.train.distributed import init_from_env


def main(argv: list[str]) -> int:
    """Run the job in file ``argv[0]`` under results root ``argv[1]`` as this rank; returns the exit code."""
    job, root = json.loads(Path(argv[0]).read_text()), Path(argv[1])
    init_from_env()
    try:
        summary = run_job(job, root)
    finally:
        dist.destroy_process_group()
    return 0 if State(summary["status"]).is_done() else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
