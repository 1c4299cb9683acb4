"""The local launch of jobs that span several ranks, via torchrun (their `resources`: ``harness.backends``).

A stage's ``resources: {gpus: G, nodes: M}`` (``pretrain.resources`` for pretraining, ``resources`` for the
downstream stages; default one of each) asks for G ranks per node on M nodes, one per GPU (gloo ranks on the
CPU cores where no GPU is visible). They do not change what is learnt (``harness.train.distributed``), so they
stay out of the job's id: expand puts them on the job (``Job.resources``).

The local backend starts a job of several ranks with PyTorch's elastic launcher (``python -m
torch.distributed.run``, one node); each rank runs ``harness.backends.rank``. A rank that dies ends the others
within seconds (their next collective fails; torchrun kills them after 30 s at most), and the job is recorded
failed with the launcher's account of the rank that failed; its checkpoint lets the next `harness submit` resume
it. The Slurm backend runs them as Slurm jobs of one task per rank (``harness.backends.slurm``). Torch-free at
import.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from harness.job import Job
from harness.job.process import user_threads
from harness.store import State
from harness.store.atomic import write_text_atomic
from harness.store.folders import disk_state, read_summary, run_dir, sweep_dir, write_summary

# Seconds torchrun gives the ranks to end when it is itself stopped (SIGTERM, Ctrl-C) before it kills them. When a
# rank dies, torchrun stops the others (SIGTERM, SIGKILL after its fixed 30 s); they usually end sooner, as their
# next collective fails.
SHUTDOWN_S = 5


def torchrun_command(job_file: Path, root: Path, ranks: int) -> list[str]:
    """The torchrun command that runs the job in ``job_file`` as ``ranks`` processes on this machine."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes=1", f"--nproc-per-node={ranks}",
            "--max-restarts=0", f"--shutdown-timeout={SHUTDOWN_S}", "-m", "harness.backends.rank", str(job_file),
            str(root)]


def rank_failure(log: str) -> str:
    """One line from torchrun's failure report: which rank failed first and how (exit code, signal)."""
    keys = ("rank ", "exitcode", "traceback")
    _, _, root_cause = log.rpartition("Root Cause")  # the first rank that failed; the others were stopped after it
    lines = [line.strip() for line in (root_cause or log).splitlines() if line.strip().startswith(keys)]
    return "; ".join(" ".join(line.split()) for line in lines[:3]) or (log.strip().splitlines() or ["no output"])[-1]


def run_local_ranks(job: Job, root: Path | str, *, threads: int = 0) -> dict[str, Any]:
    """Run ``job`` as ``job.world_size`` ranks on this machine under torchrun; returns its summary row.

    Rank 0 writes the results as a single process would. When any rank fails (a crash, SIGKILL), the job is
    recorded failed with torchrun's account of it; ``ranks.log`` in the run folder is the ranks' and torchrun's
    output as it comes (a log, appended as it goes, not a result file).
    ``threads``: CPU threads of this worker slot, shared among the ranks (each rank has the user's
    ``OMP_NUM_THREADS`` where set, as a Slurm task has).
    """
    root = Path(root)
    sweep_path = sweep_dir(root, job.sweep)
    folder = run_dir(sweep_path, job.id)
    if disk_state(sweep_path, job).is_done():
        return read_summary(folder)
    before = read_summary(folder)
    folder.mkdir(parents=True, exist_ok=True)
    job_file = folder / "launch.json"
    write_text_atomic(job_file, json.dumps(job.to_dict()))
    ranks = job.world_size
    env = {**os.environ, "OMP_NUM_THREADS": str(user_threads() or max(1, (threads or os.cpu_count() or 1) // ranks))}
    log = folder / "ranks.log"
    with log.open("w") as out:
        code = subprocess.run(torchrun_command(job_file, root, ranks), env=env, stdout=out, stderr=subprocess.STDOUT,
                              check=False).returncode
    summary = read_summary(folder)
    if code == 0 and summary is not None:
        return summary
    error = f"a rank of {ranks} failed ({rank_failure(log.read_text())}); resubmit to resume from the checkpoint"
    if summary is not None and summary != before and summary.get("error"):  # rank 0 recorded its own error
        error += f"; rank 0: {summary['error']}"
    return write_summary(sweep_path, job, {"status": State.FAILED, "error": error})
