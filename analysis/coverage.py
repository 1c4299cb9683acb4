"""How often the default interval of a fitted exponent covers the truth, on synthetic curves with known exponents.

    python -m analysis.coverage                  # the full study: 2 designs x 4 seed counts x 2 laws, 200 draws each
    python -m analysis.coverage --draws 50 --seeds 2 10

Each draw is one curve: err = 2 N^-0.5 (the pure law, fitted without a floor) or 2 N^-0.5 + 0.01 (fitted with its
floor c), times 10 % log-normal noise per run, at every N of the design for every seed, fitted by
``analysis.powerlaw.fit`` with the seeds as groups, as the report fits a curve. A cell reports the share of draws
whose interval for b held 0.5, the median width, and what the analysis called the interval
(``analysis.intervals``): where it is not a 95 % interval, its coverage is shown but no 95 % is claimed.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.document import md_table
from analysis.powerlaw import fit

A, B, NOISE = 2.0, 0.5, 0.1
DESIGNS = {"4 N (8-512)": (8, 32, 128, 512), "6 N (8-256)": (8, 16, 32, 64, 128, 256)}
SEEDS = (1, 2, 3, 5)
LAWS = {"pure": 0.0, "floor c = 0.01": 0.01}  # the floor, fitted when it is not 0
TARGET = 0.90  # the coverage a 95 % interval must reach in every cell


def coverage_cell(design: Sequence[int], seeds: int, floor: float, *, draws: int = 200, n_boot: int = 1000,
                  rng_seed: int = 0) -> dict:  # fmt: skip
    """Coverage of b's interval over ``draws`` curves of one design; the label the analysis gave it (the same in
    every draw: it depends on the design alone) and whether that is a 95 % interval."""
    n = np.tile(np.asarray(design, dtype=float), seeds)
    groups = np.repeat(np.arange(seeds), len(design))
    hits, widths, labels = 0, [], set()
    for draw in range(draws):
        rng = np.random.default_rng([rng_seed, seeds, len(design), draw])
        err = (A * n**-B + floor) * np.exp(rng.normal(0.0, NOISE, n.size))
        f = fit(n, err, offset=floor > 0, n_boot=n_boot, seed=draw, groups=groups)
        lo, hi = f.b_ci
        hits += bool(lo <= B <= hi)
        widths.append(hi - lo)
        labels.add((f.basis.label, f.basis.valid))
    (label, valid), *others = labels
    assert not others, labels  # the basis is a function of the design
    return {"coverage": hits / draws, "median width": float(np.median(widths)), "95 %": valid, "interval": label}


def coverage_table(*, draws: int = 200, seeds: Sequence[int] = SEEDS, n_boot: int = 1000) -> pd.DataFrame:
    """One row per (design, law, seed count): coverage of b's default interval, its median width and label."""
    rows = []
    for name, design in DESIGNS.items():
        for law, floor in LAWS.items():
            for s in seeds:
                cell = coverage_cell(design, s, floor, draws=draws, n_boot=n_boot)
                rows.append({"design": name, "law": law, "seeds": s, "draws": draws, **cell})
    return pd.DataFrame(rows)


def parse_args(argv: Sequence[str] | None, description: str, seeds: Sequence[int]) -> argparse.Namespace:
    """The options of a coverage script: ``--draws``, ``--seeds``, ``--n-boot``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(seeds))
    parser.add_argument("--n-boot", type=int, default=1000)
    return parser.parse_args(argv)


def print_coverage(table: pd.DataFrame, shown: pd.DataFrame, column: str, what: str, args: argparse.Namespace,
                   start: float) -> int:
    """Print ``shown`` (``table`` formatted) and how many cells labelled 95 % have ``column`` (a coverage of
    ``what``) below TARGET; the exit status: 1 when any does."""
    print(md_table(shown))
    short = table[table["95 %"] & (table[column] < TARGET)]
    print(f"\n{len(table)} cells, {args.draws} draws each, n_boot {args.n_boot}: {time.perf_counter() - start:.0f} s; "
          f"{len(short)} cells labelled 95 % cover {what}less than {TARGET:.0%}")  # fmt: skip
    return 1 if len(short) else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Print the coverage table; exit status 1 when a cell labelled 95 % covers less than TARGET."""
    args = parse_args(argv, __doc__.splitlines()[0], SEEDS)
    start = time.perf_counter()
    table = coverage_table(draws=args.draws, seeds=args.seeds, n_boot=args.n_boot)
    shown = table.assign(coverage=table["coverage"].map("{:.1%}".format),
                         **{"median width": table["median width"].map("{:.3f}".format)})  # fmt: skip
    return print_coverage(table, shown, "coverage", "", args, start)


if __name__ == "__main__":
    raise SystemExit(main())
