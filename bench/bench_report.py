"""Benchmark ``harness report`` end to end on a synthetic sweep folder of ~10 000 summary files.

Times, in one process: the naive load (pandas.concat of per-file read_parquet on 1000 files, scaled linearly:
the baseline); ``load_runs`` cold (no results.parquet: every summary file is read, results.parquet written)
and warm (results.parquet fresh: one stat per file); the curve fits; the transfer laws; ``build_report`` (load +
fits + laws + figures + HTML) warm, as after a local ``harness submit``, and cold. Prints the ratios and the load
average.

    .venv/bin/python bench/bench_report.py            # 10 444 runs, n_boot 1000
    .venv/bin/python bench/bench_report.py --smoke    # ~140 runs (CI)
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from analysis.figures import fit_curves
from analysis.laws import fit_laws
from analysis.load import load_runs
from analysis.report import build_report
from analysis.synthetic import synthetic_runs, write_synthetic_sweep

FULL = {
    "systems": ("poisson", "advection_diffusion", "helmholtz"), "shifts": ("id", "moderate", "large"),
    "sizes": ((16, 4), (32, 8), (64, 16), (128, 32)), "n_trains": tuple(2**k for k in range(3, 16)),
    "seeds": tuple(range(7)), "pretrain_systems": ("same", "mixed"),
}  # fmt: skip
BASELINE_FILES = 1000  # the naive load is timed on this many files and scaled linearly
SMOKE = {"sizes": ((16, 4), (32, 8)), "seeds": (0, 1, 2), "pretrain_systems": ("same", "mixed")}


def timed(label: str, fn: Callable[[], object]) -> tuple[float, object]:
    """Run ``fn`` once, print its wall and CPU time (all threads of this process: on a loaded machine the wall time
    also counts the waits for a core), and return the wall time and its result."""
    start, cpu = time.perf_counter(), time.process_time()
    result = fn()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(f"{label:<44s} {seconds:8.2f} s  (CPU {cpu:7.2f} s)")
    return seconds, result


def main() -> None:
    """Build the synthetic sweep in a temporary folder, then time the baseline and the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="~140 runs instead of ~10 000")
    parser.add_argument("--n-boot", type=int, default=1000)
    args = parser.parse_args()
    frame = synthetic_runs(**(SMOKE if args.smoke else FULL))
    with tempfile.TemporaryDirectory() as tmp:
        sweep = Path(tmp) / "bench"
        timed(f"write {len(frame)} summary files (setup)", lambda: write_synthetic_sweep(sweep, frame))
        files = sorted(sweep.glob("runs/*/summary.parquet"))
        sample = files[:BASELINE_FILES]
        part, _ = timed(f"baseline: per-file read_parquet + concat, {len(sample)} files",
                        lambda: pd.concat(map(pd.read_parquet, sample)))  # fmt: skip
        naive = part * len(files) / len(sample)
        print(f"{'baseline extrapolated to ' + str(len(files)) + ' files':<44s} {naive:8.2f} s")
        results = sweep / "results.parquet"
        cold, loaded = timed("load_runs cold (reads every summary file)", lambda: load_runs(sweep))
        load, loaded = timed("load_runs warm (results.parquet fresh)", lambda: load_runs(sweep))
        fits, table = timed(f"fit_curves (n_boot={args.n_boot})", lambda: fit_curves(loaded.ok, n_boot=args.n_boot))
        laws, fitted = timed(f"fit_laws (n_boot={args.n_boot})", lambda: fit_laws(loaded.ok, table, n_boot=args.n_boot))
        total, result = timed("build_report end to end, warm", lambda: build_report(sweep, n_boot=args.n_boot))
        results.unlink()
        total_cold, _ = timed("build_report end to end, cold", lambda: build_report(sweep, n_boot=args.n_boot))
        print(f"curves fitted: {len(table.table)}, laws fitted: {len(fitted.fits)}, figures: {len(result.figures)}, "
              f"skipped: {len(result.skipped)}")  # fmt: skip
        print(
            f"load speed-up vs baseline: cold {naive / cold:.2f}x, warm {naive / load:.2f}x; "
            f"report / baseline load: {total / naive:.2f}x"
        )
        rest = total - load - fits - laws
        print(
            f"report total, warm: {total:.2f} s (load {load:.2f}, fits {fits:.2f}, laws {laws:.2f}, figures + files "
            f"{rest:.2f}); cold: {total_cold:.2f} s"
        )
        print(f"load average (1, 5, 15 min): {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
