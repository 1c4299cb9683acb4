"""Benchmark: how much of a small-N job's wall time is spent outside its training steps.

One real scratch job at the reference scale (32x32 Poisson, width 16, modes 8, N = 8, 128 validation
samples, a 2,000-step budget), run through ``harness.job.run.run_job`` three ways in the same process:

- ``steps``: the bare optimiser steps of that budget (same model, batch and data, no validation): the floor;
- ``cadence``: the job as the harness runs it now (validation every budget / 50 steps, timed checkpoints);
- ``per-epoch``: the job validated and checkpointed after every epoch (one step at N = 8), as before.

Outside = 1 - steps / job wall time. The data cache is warmed first, so no job generates data.

    python bench/bench_eval_overhead.py            # 2,000 steps, 2 rounds
    python bench/bench_eval_overhead.py --smoke    # 60 steps at 16x16 (CI)
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch
from _common import machine, make_step, median

from harness.job import Job
from harness.job.run import run_job
from harness.models.fno import FNO
from harness.sweep.expand import expand
from harness.sweep.spec import parse_sweep


def job(resolution: int, width: int, modes: int, steps: int, **train: object) -> Job:
    """The N = 8 scratch job, with extra train settings."""
    data = {"name": "overhead", "base": {
        "resolution": resolution, "init": "scratch", "model": {"width": width, "modes": modes},
        "downstream": {"system": "poisson", "n_train": 8, "n_val": 128, "n_test": 256},
        "train": {"steps": steps, "lr": 1e-3, "batch_size": 16, **train}}}
    [the_job] = expand(parse_sweep(data, {}, "<bench>"))
    return the_job


def bare_steps(resolution: int, width: int, modes: int, steps: int) -> float:
    """Seconds of ``steps`` optimiser steps on a batch of 8, nothing else."""
    torch.manual_seed(0)
    model = FNO(width=width, modes=modes)
    step = make_step(model, torch.randn(8, 7, resolution, resolution), torch.randn(8, 1, resolution, resolution))
    step()  # warm-up (allocations, DFT matrices)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return time.perf_counter() - start


def job_seconds(the_job: Job, root: Path) -> float:
    """Wall time of ``run_job`` on a fresh run folder."""
    shutil.rmtree(root / the_job.sweep, ignore_errors=True)
    start = time.perf_counter()
    summary = run_job(the_job, root)
    elapsed = time.perf_counter() - start
    if summary["status"] != "ok":
        raise SystemExit(f"the job did not finish ok: {summary['error']}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="60 steps at 16x16, width 8, modes 4 (CI)")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    shape = (16, 8, 4) if args.smoke else (32, 16, 8)
    steps, rounds = (60, 1) if args.smoke else (args.steps, args.rounds)
    torch.set_num_threads(1)
    jobs = {"cadence": job(*shape, steps),
            "per-epoch": job(*shape, steps, eval_every=1, checkpoint_every_s=0.0)}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ["HARNESS_DATA_CACHE"] = str(root / "cache")
        job_seconds(jobs["cadence"], root)  # warms the data cache
        times: dict[str, list[float]] = {"steps": [], **{name: [] for name in jobs}}
        for r in range(rounds):
            order = ["steps", *jobs]
            for name in order[r % 3:] + order[:r % 3]:
                times[name].append(bare_steps(*shape, steps) if name == "steps" else job_seconds(jobs[name], root))
    floor = median(times["steps"])
    print(f"N = 8, {steps} steps at {shape[0]}x{shape[0]}, width {shape[1]}, modes {shape[2]}, 128 validation "
          f"samples; {machine(torch.device('cpu'))}; median of {rounds} round(s)")
    print(f"{'run':<10} {'wall s':>8} {'outside steps':>14}")
    print(f"{'steps':<10} {floor:8.1f} {'-':>14}")
    for name in jobs:
        wall = median(times[name])
        print(f"{name:<10} {wall:8.1f} {1 - floor / wall:14.0%}")
    print(f"per-epoch / cadence wall time: {median(times['per-epoch']) / median(times['cadence']):.2f}x")


if __name__ == "__main__":
    main()
