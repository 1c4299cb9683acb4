"""Benchmark: makespan of one tiny sweep through the real local backend with K = 1, 2, 4 workers (or jobs per GPU).

The sweep: ``--jobs`` scratch jobs (seeds 0..n-1) at 16x16, width 8, a few epochs, on one shared data draw
(generated once before timing). Each K runs the same jobs into a fresh results folder through
``harness.backends.local.run_local`` with ``plan_slots(workers=K)`` on CPU (threads = cores // K each) or
``plan_slots(jobs_per_gpu=K)`` with a GPU. The makespan includes starting the worker processes.

    python bench/bench_sweep_makespan.py            # 8 jobs, K = 1, 2, 4
    python bench/bench_sweep_makespan.py --smoke    # 2 jobs, K = 1, 2 (CI)
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from pathlib import Path

from _common import cpu_model

from harness.backends.local import Progress, plan_slots, run_local, visible_gpus
from harness.job import Job
from harness.job.run import run_job
from harness.sweep.expand import expand
from harness.sweep.spec import parse_sweep


def tiny_sweep(n_jobs: int, epochs: int) -> list[Job]:
    """``n_jobs`` scratch jobs that differ only by seed (so they share one cached dataset)."""
    data = {
        "name": "makespan",
        "base": {
            "resolution": 16,
            "init": "scratch",
            "model": {"width": 8, "modes": 4},
            "downstream": {"system": "poisson", "n_train": 64, "n_val": 32, "n_test": 32},
            "train": {"epochs": epochs, "batch_size": 16},
        },
        "matrix": {"seed": list(range(n_jobs))},
    }
    return expand(parse_sweep(data, {}, "<bench>"))


def makespan(jobs: list[Job], root: Path, k: int, gpus: list[str]) -> float:
    """Seconds from starting the workers to the last job's end, K workers (or K jobs per GPU)."""
    slots = plan_slots(jobs_per_gpu=k, gpus=gpus) if gpus else plan_slots(workers=k)
    start = time.perf_counter()
    final = run_local(jobs, jobs, root, slots=slots, progress=Progress(total=len(jobs), stream=io.StringIO()))
    elapsed = time.perf_counter() - start
    bad = {j: s for j, s in final.items() if s != "ok"}
    if bad:
        raise SystemExit(f"jobs did not finish ok at K={k}: {bad}; see {root}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="2 jobs, K = 1, 2 (CI)")
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--ks", default="1,2,4", help="comma-separated worker counts")
    parser.add_argument("--repeats", type=int, default=1, help="runs of the whole K series (median reported)")
    args = parser.parse_args()
    if args.smoke:
        args.jobs, args.epochs, args.ks, args.repeats = 2, 2, "1,2", 1
    ks = [int(k) for k in args.ks.split(",")]
    gpus = visible_gpus()
    with tempfile.TemporaryDirectory(prefix="makespan-") as tmp:
        os.environ["HARNESS_DATA_CACHE"] = str(Path(tmp) / "data")  # workers inherit it: one shared data draw
        jobs = tiny_sweep(args.jobs, args.epochs)
        run_job(jobs[0], Path(tmp) / "warm")  # generates and caches the data outside the timing
        where = f"{len(gpus)} GPU(s), jobs per GPU" if gpus else f"{cpu_model()}, {os.cpu_count()} cores, workers"
        print(f"sweep makespan: {len(jobs)} scratch jobs (16x16, width 8, {args.epochs} epochs) on {where} = K")
        times: dict[int, list[float]] = {k: [] for k in ks}
        for r in range(args.repeats):
            for k in ks if r % 2 == 0 else ks[::-1]:  # alternate the order between repeats
                times[k].append(makespan(jobs, Path(tmp) / f"r{r}-k{k}", k, gpus))
        base = sorted(times[ks[0]])[len(times[ks[0]]) // 2]
        for k in ks:
            t = sorted(times[k])[len(times[k]) // 2]
            runs = ", ".join(f"{v:.1f}" for v in times[k])
            print(f"K={k}: makespan {t:6.1f} s  speed-up vs K={ks[0]}: {base / t:4.2f}x   (runs: {runs})")


if __name__ == "__main__":
    main()
