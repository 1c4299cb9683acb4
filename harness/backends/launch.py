"""Jobs that span several ranks: their `resources`, what a backend offers, and the local launch via torchrun.

A stage's ``resources: {gpus: G, nodes: M}`` (``pretrain.resources`` for pretraining, ``resources`` for the
downstream stages; default one of each) asks for G ranks per node on M nodes, one per GPU (gloo ranks on the
CPU cores where no GPU is visible). They do not change what is learnt (``harness.train.distributed``), so they
stay out of the job's id: ``take_resources`` moves them from a point's config onto the job.

The local backend starts a job of several ranks with PyTorch's elastic launcher (``python -m
torch.distributed.run``, one node); each rank runs ``harness.backends.rank``. A rank that dies ends the others
within seconds (their next collective fails; torchrun kills them after 30 s at most), and the job is recorded
failed with the launcher's account of the rank that failed; its checkpoint lets the next `harness submit` resume
it. The Slurm backend refuses such jobs for now (``refuse_ranks``). Torch-free at import.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from harness.backends.resources import SlurmResources, gpu_memory
from harness.errors import BackendError
from harness.files import write_text_atomic
from harness.states import State
from harness.store import disk_state, read_summary, run_dir, sweep_dir, write_summary

DEFAULT = {"gpus": 1, "nodes": 1}
# Seconds torchrun gives the ranks to end when it is itself stopped (SIGTERM, Ctrl-C) before it kills them. When a
# rank dies, torchrun stops the others (SIGTERM, SIGKILL after its fixed 30 s); they usually end sooner, as their
# next collective fails.
SHUTDOWN_S = 5
RESOURCE_KEYS = ("resources", "pretrain.resources")  # where a sweep sets them (downstream stages, pretraining)


def take_resources(config: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Remove the resources from a resolved point config (in place); returns them per stage kind
    ({"pretrain": ..., "downstream": ...}), each {gpus, nodes} with the defaults filled in."""
    pretrain = config.get("pretrain", {}).pop("resources", None) or {}
    downstream = config.pop("resources", None) or {}
    return {"pretrain": {**DEFAULT, **pretrain}, "downstream": {**DEFAULT, **downstream}}


def world_size(job: dict[str, Any]) -> int:
    """How many ranks a job runs as (1 for a job without resources)."""
    res = {**DEFAULT, **job.get("resources", {})}
    return res["gpus"] * res["nodes"]


def offer(slurm: dict[str, Any] | None) -> tuple[int, int, str]:
    """(ranks per node, nodes, where from) a backend offers: a sweep with a `slurm:` block gets its
    ``gpus_per_node`` per node (at least one task) on any number of nodes; otherwise this machine: its visible
    GPUs, else its CPU cores (gloo ranks), on one node."""
    if slurm:
        per_node = max(1, SlurmResources.from_dict(slurm).gpus_per_node)
        return per_node, sys.maxsize, f"slurm.gpus_per_node = {per_node}"
    gpus = len(gpu_memory())
    if gpus:
        return gpus, 1, f"{gpus} GPU(s) visible here"
    cores = os.cpu_count() or 1
    return cores, 1, f"no GPU visible here, {cores} CPU core(s) for gloo ranks"


def resource_problem(resources: dict[str, dict[str, int]], stages: list[str], offered: tuple[int, int, str],
                     tuned: tuple[str, ...] = ()) -> tuple[str, str] | None:
    """(config key, message) when a training stage among ``stages`` asks for more than ``offered``, or a tuned
    stage (in ``tuned``) for several ranks; else None. ``resources`` is ``take_resources``'s answer (values
    already checked to be integers >= 1)."""
    per_node, nodes, where = offered
    for stage in stages:
        if stage == "zeroshot":
            continue  # evaluates only, in one process
        key = "pretrain.resources" if stage == "pretrain" else "resources"
        res = resources["pretrain" if stage == "pretrain" else "downstream"]
        if stage in tuned and res["gpus"] * res["nodes"] > 1:
            return f"{key}.gpus", f"{stage} jobs are tuned (tune.stages), and a trial runs as one rank; remove {key}"
        if res["gpus"] > per_node:
            return f"{key}.gpus", (f"{key}.gpus = {res['gpus']} but {per_node} per node are available ({where}); "
                                   f"ask for at most {per_node}")
        if res["nodes"] > nodes:
            return f"{key}.nodes", (f"{key}.nodes = {res['nodes']} but the local backend has one node; use 1, or "
                                    "a `slurm:` block for several nodes")
    return None


def refuse_ranks(jobs: list[dict[str, Any]], backend: str) -> None:
    """Raise ``BackendError`` when one of ``jobs`` asks for several ranks, which ``backend`` cannot start yet."""
    for job in jobs:
        if world_size(job) > 1:
            raise BackendError(f"job {job['id']} asks for {world_size(job)} ranks (resources {job['resources']}), "
                               f"which the {backend} backend cannot start yet; submit with --backend local, or "
                               "set its resources to gpus: 1, nodes: 1")


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


def run_local_ranks(job: dict[str, Any], root: Path | str, *, threads: int = 0) -> dict[str, Any]:
    """Run ``job`` as ``world_size(job)`` ranks on this machine under torchrun; returns its summary row.

    Rank 0 writes the results as a single process would. When any rank fails (a crash, SIGKILL), the job is
    recorded failed with torchrun's account of it; ``ranks.log`` in the run folder is the ranks' and torchrun's
    output as it comes (a log, appended as it goes, not a result file).
    ``threads``: CPU threads of this worker slot, shared among the ranks.
    """
    root = Path(root)
    sweep_path = sweep_dir(root, job["sweep"])
    folder = run_dir(sweep_path, job["id"])
    if disk_state(sweep_path, job).is_done():
        return read_summary(folder)
    before = read_summary(folder)
    folder.mkdir(parents=True, exist_ok=True)
    job_file = folder / "launch.json"
    write_text_atomic(job_file, json.dumps(job))
    ranks = world_size(job)
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (threads or os.cpu_count() or 1) // ranks))}
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
