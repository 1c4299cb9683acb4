"""Benchmark: `harness expand --estimate` against the measured run time of the sweeps it prices.

For each smoke sweep (the steady ``sweeps/smoke.yaml``, the time-dependent ``sweeps/strategies-time-smoke.yaml``
and ``sweeps/pretrain-size-smoke.yaml``), in one process and one after the other: expand it into a temporary
root, calibrate and price it (``harness.sweep.estimate``: what ``--estimate`` prints), then run it with the inline
backend (one job at a time, in this process, one thread: what the estimate prices) and print the estimate's hours,
the measured wall time of the whole submit and of the jobs alone (their ``wall_s``), and estimate / measured.
The calibration and the run share the process and the minutes, so a neighbour's load weighs on both: the ratio
is the figure, not the hours. The measured time includes the PDE data generation (the first job of each dataset
generates it), which the estimate does not price: the jobs' column says how much it weighs.

    python bench/bench_estimate.py                 # the three smoke sweeps as committed (minutes each)
    python bench/bench_estimate.py --smoke         # smoke and strategies-time-smoke trimmed (fewer points and
                                                   # steps): about a minute on two free cores
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

os.environ.setdefault("OMP_NUM_THREADS", "1")  # a job's threads, for the calibration and the run alike

import harness  # noqa: E402 - after the thread setting, before torch loads
from harness.store.folders import read_summary, run_dir  # noqa: E402
from harness.sweep.estimate import calibrate_jobs, estimate, job_work  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SWEEPS = ("smoke", "strategies-time-smoke", "pretrain-size-smoke")
SMOKE_SWEEPS = ("smoke", "strategies-time-smoke")


def trimmed(spec: dict[str, Any]) -> dict[str, Any]:
    """A sweep cut to a few points and steps (``--smoke``): the first value of every matrix axis but the init /
    strategy axes, an eighth of the steps."""
    spec = yaml.safe_load(yaml.safe_dump(spec))  # a deep copy
    keep = ("init", "pretrain.strategy")
    spec["matrix"] = {k: (v if k in keep else v[:1]) for k, v in spec.get("matrix", {}).items()}
    spec.pop("zip", None)
    for group in (spec["base"].get("train"), spec["base"].get("pretrain", {}).get("train")):
        if group and group.get("steps"):
            group["steps"] = max(8, group["steps"] // 8)
    return spec


def measure(name: str, spec: dict[str, Any], root: Path) -> dict[str, float]:
    """Expand, price and run one sweep under ``root``; the estimate's hours and the measured ones."""
    plan = harness.expand(spec, root=root)
    start = time.perf_counter()
    rates = calibrate_jobs(plan.jobs)[0]
    calibration = time.perf_counter() - start
    hours = estimate(plan.jobs, rates)["total"].hours
    start = time.perf_counter()
    harness.submit(plan, root=root, backend="inline", workers=1, echo=lambda line: None)
    wall = time.perf_counter() - start
    jobs = sum(read_summary(run_dir(plan.folder, job.id))["wall_s"] for job in plan.jobs)
    return {"jobs": len(plan.jobs), "estimate_h": hours, "wall_h": wall / 3600, "jobs_h": jobs / 3600,
            "calibration_s": calibration, "steps": sum(job_work(j).steps for j in plan.jobs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="trimmed sweeps, about a minute")
    parser.add_argument("--sweeps", help="comma-separated names under sweeps/ (default: all three; --smoke: "
                                          "smoke and strategies-time-smoke)")
    args = parser.parse_args()
    names = args.sweeps.split(",") if args.sweeps else SMOKE_SWEEPS if args.smoke else SWEEPS
    print(f"load average {os.getloadavg()[0]:.1f}; OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}; "
          f"{'trimmed' if args.smoke else 'committed'} sweeps")
    print(f"{'sweep':<24} {'jobs':>5} {'steps':>7} {'estimate h':>11} {'measured h':>11} {'jobs h':>8} "
          f"{'est/measured':>13} {'est/jobs':>9} {'calib s':>8}")
    for name in names:
        spec = yaml.safe_load((ROOT / "sweeps" / f"{name}.yaml").read_text())
        if args.smoke:
            spec = trimmed(spec)
        with tempfile.TemporaryDirectory(prefix="bench-estimate-") as tmp:
            row = measure(name, spec, Path(tmp))
        est = row["estimate_h"]
        print(f"{name:<24} {row['jobs']:5d} {row['steps']:7d} {est:11.4f} {row['wall_h']:11.4f} {row['jobs_h']:8.4f} "
              f"{est / row['wall_h']:13.2f} {est / row['jobs_h']:9.2f} {row['calibration_s']:8.1f}", flush=True)


if __name__ == "__main__":
    main()
