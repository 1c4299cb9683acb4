"""Does ``harness suggest`` pick better runs than chance? On synthetic sweeps with known laws
(``analysis.synthetic``), the k runs ``analysis.suggest.pick`` chooses against k runs drawn uniformly from the same
candidates, at the same cost.

Each draw writes a sweep of one curve pair (scratch and fine-tuned, one size, one shift) at DESIGN_N with DESIGN_SEEDS
and its own noise, fits it (``fit_curves``, ``n_boot`` resamples: the report's interval, cheaply), then adds either
set of k runs (drawn from the same laws; a run at the same N and seed gets the same noise in both sets) and refits.
Every synthetic run trains the same step budget, so every candidate costs the same (one unit, as the cost estimate
gives runs of a fixed step budget) and k runs are the same cost. Printed per target: the median over draws of the
interval's width after / before, for the picked and the uniform runs, and the share of draws in which the picked runs
gave the narrower interval.

    python -m analysis.suggest_check --draws 200 --n-boot 200
"""

from __future__ import annotations

import argparse
import math
import zlib

import numpy as np
import pandas as pd

from analysis.claims import fit_claims
from analysis.curves import fit_curves
from analysis.multipliers import small_n_multipliers
from analysis.suggest import Curves, Resolved, pick, resolve
from analysis.synthetic import synthetic_runs

DESIGN_N = (8, 32, 128, 512)
DESIGN_SEEDS = (0, 1)
TARGETS = ("b.scratch.poisson.id.w16m4", "b.finetune.poisson.id.w16m4", "multfit.poisson.id.w16m4.n8")
NOISE = 0.1  # log-space noise of a run


def _sweep(rng_seed: int, n_trains: tuple[int, ...], seeds: tuple[int, ...]) -> pd.DataFrame:
    return synthetic_runs(shifts=("id",), sizes=((16, 4),), n_trains=n_trains, seeds=seeds, zeroshot=False,
                          noise=NOISE, rng_seed=rng_seed)  # fmt: skip


def interval_width(frame: pd.DataFrame, target: str, n_boot: int) -> float:
    """The width of ``target``'s interval as the report computes it (log of the ends for a multiplier)."""
    fits = fit_curves(frame, n_boot=n_boot)
    mult = small_n_multipliers(frame, fits, n_boot=n_boot) if target.startswith("mult") else pd.DataFrame()
    row = fit_claims(fits, mult).set_index("id").loc[target]
    lo, hi = float(row["lo"]), float(row["hi"])
    if target.startswith("mult"):
        return math.log(hi) - math.log(lo) if lo > 0 else math.inf
    return hi - lo


def _added(frame: pd.DataFrame, resolved: Resolved, runs: list[tuple[int, int, int]], draw: int) -> pd.DataFrame:
    """``frame`` with one synthetic run per (curve, N, seed) of ``runs``, drawn from the same laws."""
    c = Curves.of(frame, fit_curves(frame, n_boot=0))
    rows = [frame]
    for curve, n, seed in runs:
        stage = c.groups[resolved.designs[curve].label]["stage"].iloc[0]
        new = _sweep(zlib.crc32(f"{draw}-{n}-{seed}".encode()), (n,), (seed,))
        rows.append(new[new["stage"] == stage])
    return pd.concat(rows, ignore_index=True)


def _uniform(resolved: Resolved, k: int, rng: np.random.Generator) -> list[tuple[int, int, int]]:
    """k runs drawn one after the other uniformly from the candidates (which change as runs are added)."""
    designs, out = list(resolved.designs), []
    for _ in range(k):
        options = [(i, n, s) for i, d in enumerate(designs) for n, s in d.candidates()]
        i, n, s = options[rng.integers(len(options))]
        designs[i] = designs[i].with_run(n, s)
        out.append((i, n, s))
    return out


def check(target: str, *, draws: int, k: int, n_boot: int) -> dict[str, float]:
    """Median width ratios (after / before) of the picked and the uniform runs over ``draws`` synthetic sweeps,
    and the share of draws in which the picked runs did better."""
    picked, uniform = [], []
    for draw in range(draws):
        frame = _sweep(draw, DESIGN_N, DESIGN_SEEDS)
        resolved = resolve(target, frame, fit_curves(frame, n_boot=0))
        before = interval_width(frame, target, n_boot)
        chosen = [(p.curve, p.n, p.seed) for p in pick(resolved, lambda i, n, s: 1.0, float(k), k)]
        drawn = _uniform(resolved, k, np.random.default_rng(draw))
        picked.append(interval_width(_added(frame, resolved, chosen, draw), target, n_boot) / before)
        uniform.append(interval_width(_added(frame, resolved, drawn, draw), target, n_boot) / before)
    p, u = np.array(picked), np.array(uniform)
    return {"picked": float(np.median(p)), "uniform": float(np.median(u)), "better": float(np.mean(p < u))}


def main(argv: list[str] | None = None) -> None:
    """Print, per target, the median width ratios of the picked and the uniform runs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--n-boot", type=int, default=200)
    parser.add_argument("--target", action="append", default=None, help=f"default: {', '.join(TARGETS)}")
    args = parser.parse_args(argv)
    print(f"{args.draws} draws, k = {args.k}, n_boot = {args.n_boot}, design N {DESIGN_N} x seeds {DESIGN_SEEDS}, "
          f"noise {NOISE}; width after / before (median over draws)")
    print(f"{'target':<34} {'picked':>8} {'uniform':>8} {'picked better':>14}")
    for target in args.target or TARGETS:
        r = check(target, draws=args.draws, k=args.k, n_boot=args.n_boot)
        print(f"{target:<34} {r['picked']:8.3f} {r['uniform']:8.3f} {r['better']:13.0%}", flush=True)


if __name__ == "__main__":
    main()
