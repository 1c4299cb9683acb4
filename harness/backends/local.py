"""The local backend: jobs in dependency order on worker processes, K per visible GPU or sharing the CPU.

A sweep with `pack:` sends a worker a group of ready jobs of one shape (``harness.job.fusable``), which it trains
as one program (``harness.job.run.run_group``).

Workers are long-lived processes (torch is imported once) fed one job at a time over a pipe. A worker that
dies (SIGKILL, out of memory) has its job recorded as failed and is replaced; the job's checkpoint lets the
next `harness submit` resume it. A downstream job whose pretraining did not finish ok is recorded blocked.
`LocalBackend` is this module behind the `Backend` protocol; `submit` returns when every job has ended.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import multiprocessing as mp
import os
import sys
from collections import Counter
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from harness.backends.launch import run_local_ranks
from harness.backends.select import Readiness, disk_states, readiness
from harness.job import Job
from harness.job.fusable import fused_groups
from harness.job.process import apply_job_env, user_threads
from harness.store import State
from harness.store.collect import collect_table
from harness.store.folders import disk_state, record_blocked, sweep_dir, write_summary
from harness.store.lock import hold_worker_lock, stop_with_parent
from harness.store.progress import Progress


@dataclass(frozen=True)
class LocalBackend:
    """Worker processes on this machine: ``jobs_per_gpu`` per visible GPU, else ``workers`` CPU workers."""

    workers: int | None = None
    jobs_per_gpu: int = 1
    verbose: bool = False

    @classmethod
    def from_options(cls, spec: dict[str, Any], options: dict[str, Any]) -> LocalBackend:
        """From the CLI's --workers, --jobs-per-gpu and --verbose (the sweep file has no local settings)."""
        return cls(options.get("workers"), options.get("jobs_per_gpu") or 1, bool(options.get("verbose")))

    def status(self, sweep_path: Path, jobs: list[Job]) -> dict[str, State]:
        """The run folders' view: local jobs live only while `harness submit` runs."""
        return disk_states(sweep_path, jobs)

    def submit(self, jobs: list[Job], plan: list[Job], sweep_path: Path) -> str:
        """Run ``jobs`` on the worker slots until every one has ended; returns the tally."""
        slots = plan_slots(workers=self.workers, jobs_per_gpu=self.jobs_per_gpu, gpus=visible_gpus())
        return finished(sweep_path, run_local(jobs, plan, Path(sweep_path).parent, slots=slots,
                                              verbose=self.verbose))

    def cancel(self, sweep_path: Path) -> int:
        """Nothing is queued: local jobs stop with the `harness submit` that runs them (Ctrl-C)."""
        return 0


def finished(sweep_path: Path, final: dict[str, State]) -> str:
    """The lines a submit that ran its jobs prints: the tally of final states, and where the results table is
    (collected here, so `harness report` starts from a current results.parquet)."""
    collect_table(sweep_path)
    tally = Counter(str(state) for state in final.values())
    return (f"{Path(sweep_path).name}: " + ", ".join(f"{n} {s}" for s, n in sorted(tally.items())) + "\n"
            f"results: {Path(sweep_path) / 'results.parquet'} (one row per job; next: harness status, harness report)")


@dataclass
class Slot:
    """One worker's share of the machine: the GPU it sees (None on CPU) and its CPU threads."""

    gpu: str | None
    threads: int


def plan_slots(*, workers: int | None = None, jobs_per_gpu: int = 1, gpus: list[str] | None = None,
               cores: int | None = None) -> list[Slot]:
    """Worker slots: `jobs_per_gpu` per visible GPU, else `workers` CPU workers (default: one per 2 cores); each
    worker's threads are its share of the cores, or the user's ``OMP_NUM_THREADS`` (``harness.job.process``)."""
    cores = cores or os.cpu_count() or 1
    if gpus:
        slots = [Slot(g, 0) for g in gpus for _ in range(jobs_per_gpu)]
    else:
        slots = [Slot(None, 0) for _ in range(workers or max(1, cores // 2))]
    threads = user_threads() or max(1, cores // len(slots))
    return [Slot(s.gpu, threads) for s in slots]


def visible_gpus() -> list[str]:
    """GPU ids this process may hand to workers (CUDA_VISIBLE_DEVICES, else every device torch sees); none under
    a CPU build of torch, known from its version without importing it (a second of every submit's start-up)."""
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        if importlib.metadata.version("torch").endswith("+cpu"):
            return []
    import torch

    if not torch.cuda.is_available():
        return []
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    return [g for g in env.split(",") if g] if env else [str(i) for i in range(torch.cuda.device_count())]


def evaluation_printer(job_id: str):
    """An evaluation hook printing one line per evaluation to stderr (`--verbose`)."""

    def show(row: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):  # a closed terminal must not fail the job
            print(f"  {job_id} step {row['step']:6d}  epoch {row['epoch']:7.2f}  loss {row['train_loss']:.4g}  "
                  f"val {row['val_rel_l2']:.4f}", file=sys.stderr, flush=True)

    return show


def _worker(conn: Connection, slot: Slot, root: str, sweep_path: str, parent: int, verbose: bool) -> None:
    """Worker process: stops with its parent (``harness.store.lock``), pins its GPU and threads, then runs the jobs it
    is sent (one, or a fused group) until it gets None."""
    stop_with_parent(parent)
    lock = hold_worker_lock(Path(sweep_path))  # noqa: F841 (held until this process ends)
    if slot.gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = slot.gpu
    import torch

    from harness.job.run import run_group, run_job

    torch.set_num_threads(slot.threads)
    while (jobs := conn.recv()) is not None:
        if len(jobs) > 1:  # a fused group (`pack:`)
            summaries = run_group(jobs, root, hooks=lambda job: evaluation_printer(job.id) if verbose else None)
        elif jobs[0].world_size > 1:  # a data-parallel job: its ranks under torchrun
            summaries = [run_local_ranks(jobs[0], root, threads=slot.threads)]
        else:
            summaries = [run_job(jobs[0], root, on_eval=evaluation_printer(jobs[0].id) if verbose else None)]
        conn.send([(job.id, s["status"], s.get("error", "")) for job, s in zip(jobs, summaries, strict=True)])


class _Pool:
    """Worker processes with their pipes; restarts a worker that died."""

    def __init__(self, slots: list[Slot], root: Path, sweep_path: Path, verbose: bool):
        self.ctx = mp.get_context("spawn")
        apply_job_env()  # the workers inherit it
        self.root, self.sweep_path, self.verbose = str(root), str(sweep_path), verbose
        self.workers: list[tuple[Any, Connection, Slot]] = [self._start(s) for s in slots]

    def _start(self, slot: Slot) -> tuple[Any, Connection, Slot]:
        parent, child = self.ctx.Pipe()
        args = (child, slot, self.root, self.sweep_path, os.getpid(), self.verbose)
        proc = self.ctx.Process(target=_worker, args=args,
                                daemon=True)
        proc.start()
        child.close()
        return proc, parent, slot

    def restart(self, i: int) -> None:
        self.workers[i][1].close()
        self.workers[i] = self._start(self.workers[i][2])

    def close(self) -> None:
        for _, conn, _ in self.workers:
            with contextlib.suppress(OSError):
                conn.send(None)
        for proc, _, _ in self.workers:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()


def run_local(jobs: list[Job], all_jobs: list[Job], root: Path, *, slots: list[Slot], verbose: bool = False,
              progress: Progress | None = None) -> dict[str, State]:
    """Run `jobs` (a subset of the plan `all_jobs`) on worker processes, each once its pretraining is ok
    (``readiness``: the jobs here count as pending until they end); returns job id -> final state."""
    sweep_path = sweep_dir(root, jobs[0].sweep) if jobs else Path(root)
    state = {j.id: disk_state(sweep_path, j) for j in all_jobs} if jobs else {}
    pending = list(jobs)
    for j in pending:
        state[j.id] = State.PENDING
    progress = progress or Progress(total=len(jobs))
    pool = _Pool(slots, root, sweep_path, verbose)
    busy: dict[int, list[Job]] = {}
    try:
        while pending or busy:
            for job in [j for j in pending if readiness(j, state) is Readiness.BLOCKED]:
                assert job.depends_on is not None
                pending.remove(job)
                state[job.id] = State.BLOCKED
                record_blocked(sweep_path, job, state[job.depends_on])
                progress.failed += 1
                progress.show(f"{job.id} blocked")
            for i in (i for i in range(len(pool.workers)) if i not in busy):
                ready = fused_groups([j for j in pending if readiness(j, state) is Readiness.READY])
                if not ready:
                    break
                busy[i] = ready[0]  # the first ready job, with the ready jobs it trains with (`pack:`)
                for job in ready[0]:
                    pending.remove(job)
                    state[job.id] = State.RUNNING
                pool.workers[i][1].send(ready[0])
                progress.running += len(ready[0])
            if busy:
                _collect_one_round(pool, busy, state, sweep_path, progress)
    finally:
        pool.close()
        progress.close()
    return {j.id: state[j.id] for j in jobs}


def _collect_one_round(pool: _Pool, busy: dict[int, list[Job]], state: dict[str, State], sweep_path: Path,
                       progress: Progress) -> None:
    """Wait until a busy worker answers or dies, and record the jobs that ended."""
    sentinels = {pool.workers[i][0].sentinel: i for i in busy}
    conns = {pool.workers[i][1]: i for i in busy}
    for ready_obj in wait([*conns, *sentinels]):
        i = conns.get(ready_obj, sentinels.get(ready_obj))
        if i not in busy:
            continue
        jobs = busy.pop(i)
        progress.running -= len(jobs)
        try:
            ended = pool.workers[i][1].recv()
        except (EOFError, OSError):  # the worker died mid-job
            pool.workers[i][0].join(timeout=5)
            code = pool.workers[i][0].exitcode
            error = f"worker process died (exit code {code}); resubmit to resume"
            for job in jobs:
                write_summary(sweep_path, job, {"status": State.FAILED, "error": error})
            ended = [(job.id, State.FAILED, error) for job in jobs]
            pool.restart(i)
        for job_id, status, error in ended:
            state[job_id] = State(status)
            if state[job_id] is State.OK:
                progress.done += 1
            else:
                progress.failed += 1
            progress.show(f"{job_id} {status}" + (f": {error}" if error and status != State.OK else ""))
