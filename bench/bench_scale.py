"""Benchmark sweeps of many jobs: `harness expand`, `harness status` and the report's load
(``analysis.load.load_runs``) on a plan of N jobs, each step in its own process, as a user runs them.

The sweep is one scratch job per seed (``matrix: {seed: {range: [0, N - 1]}}``), expanded with ``--force``
past the 100 000 jobs a sweep may have without it. For each step: wall time, CPU time (user + system: on a
loaded machine the wall time also counts the waits for a core) and peak memory (the process's maximum
resident set, from ``os.wait4``); then what each extra job of the larger size cost beside the cost per job of
the smaller (equal when a step grows linearly; the smaller's includes the start-up).

    .venv/bin/python bench/bench_scale.py            # 100 000 and 1 000 000 jobs (minutes; ~1 GB of disk)
    .venv/bin/python bench/bench_scale.py --smoke    # 2 000 and 4 000 jobs (CI)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

FULL = (100_000, 1_000_000)
SMOKE = (2_000, 4_000)
BASE = {"resolution": 16, "init": "scratch", "model": {"width": 6, "modes": 4},
        "downstream": {"n_train": 8, "n_val": 4, "n_test": 4}, "train": {"epochs": 2, "batch_size": 8}}
LOAD = "import sys; from analysis.load import load_runs; print(len(load_runs(sys.argv[1]).missing), 'missing')"


def measured(label: str, argv: list[str]) -> dict[str, float]:
    """Run ``argv`` to its end; print and return its wall time, CPU time and peak resident memory."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):  # status exits 1 when a job is not ok; none ran here
        raise SystemExit(f"{label} failed ({proc.returncode}): {proc.stderr.read().decode()[-2000:]}")
    figures = {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_mb": usage.ru_maxrss / 1024}
    print(f"  {label:<8s} {wall:8.1f} s  (CPU {figures['cpu_s']:7.1f} s)  peak {figures['peak_mb']:7.0f} MB")
    return figures


def bench(jobs: int, folder: Path) -> dict[str, dict[str, float]]:
    """Write the sweep of ``jobs`` jobs under ``folder`` and time each step on it."""
    sweep = folder / f"scale-{jobs}.yaml"
    sweep.write_text(yaml.safe_dump({"name": f"scale-{jobs}", "base": BASE,
                                     "matrix": {"seed": {"range": [0, jobs - 1]}}}))
    root = folder / "results"
    harness = [sys.executable, "-m", "harness.cli"]
    print(f"{jobs} jobs:")
    steps = {"expand": [*harness, "expand", str(sweep), "--force", "--root", str(root)],
             "status": [*harness, "status", "--root", str(root)],
             "load": [sys.executable, "-c", LOAD, str(root / f"scale-{jobs}")]}
    figures = {name: measured(name, argv) for name, argv in steps.items()}
    plan = root / f"scale-{jobs}" / "plan.json"
    print(f"  plan.json {plan.stat().st_size / 1e6:.0f} MB")
    return figures


def main() -> None:
    """Time each size in a temporary folder, then print how each step grew from the first size to the second."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help=f"{SMOKE} jobs instead of {FULL}")
    args = parser.parse_args()
    sizes = SMOKE if args.smoke else FULL
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    results = {}
    for jobs in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            results[jobs] = bench(jobs, Path(tmp))
    (small, first), (large, second) = results.items()
    print(f"from {small} to {large} jobs (x{large / small:g}), each extra job costs:")
    for name in first:
        cpu, peak = ((second[name][key] - first[name][key]) / (large - small) for key in ("cpu_s", "peak_mb"))
        print(f"  {name:<8s} CPU {cpu * 1e6:7.1f} us  memory {peak * 1e3:6.2f} KB  (at {small}: "
              f"{first[name]['cpu_s'] / small * 1e6:7.1f} us, {first[name]['peak_mb'] / small * 1e3:6.2f} KB per job)")


if __name__ == "__main__":
    main()
