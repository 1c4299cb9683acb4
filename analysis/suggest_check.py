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

The compute-optimal size (``--target popt...``, JOINT_TARGET): each draw is a scratch sweep of the joint law
(``analysis.synthetic.joint_runs``: JOINT_SIZES x JOINT_N x JOINT_SEEDS, a budget in epochs), its interval that of
the report (the joint law's bootstrap, ``n_boot`` resamples, each giving its own P*: ``analysis.optimal``). Runs now
differ in cost: a candidate costs its job's training FLOPs (``analysis.compute.run_compute``, the FLOPs the cost
estimate prices, at one rate for every shape). ``analysis.suggest.pick`` takes up to JOINT_K runs within
JOINT_BUDGET of the sweep's own FLOPs; the uniform runs are drawn one after the other from the candidates that fit
what the picked runs spent, until none does (so they cost at most as much). Printed as well: the mean cost of
either set as a share of the sweep's FLOPs.

    python -m analysis.suggest_check --draws 200 --n-boot 200
    python -m analysis.suggest_check --draws 200 --n-boot 100 --target popt.scratch.poisson.id.c1e11
"""

from __future__ import annotations

import argparse
import functools
import math
import zlib
from collections.abc import Callable

import numpy as np
import pandas as pd

from analysis.claims import fit_claims, optimum_claims
from analysis.compute import run_compute
from analysis.curves import downstream_points, fit_curves
from analysis.laws import fit_laws
from analysis.multipliers import small_n_multipliers
from analysis.optimal import decade_optima
from analysis.suggest import Curves, Resolved, pick, resolve
from analysis.suggest_joint import Size
from analysis.synthetic import JOINT_SIZES, frame_jobs, joint_runs, synthetic_runs
from harness.sweep.estimate import estimate

DESIGN_N = (8, 32, 128, 512)
DESIGN_SEEDS = (0, 1)
TARGETS = ("b.scratch.poisson.id.w16m4", "b.finetune.poisson.id.w16m4", "multfit.poisson.id.w16m4.n8")
NOISE = 0.1  # log-space noise of a run
JOINT_TARGET = "popt.scratch.poisson.id.c1e11"  # P* mid-range of JOINT_SIZES
JOINT_N, JOINT_SEEDS, JOINT_NOISE = (8, 32, 128, 512, 2048), (0, 1), 0.05
JOINT_K, JOINT_BUDGET = 24, 0.05  # at most this many runs, within this share of the sweep's FLOPs


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


def _joint_sweep(rng_seed: int, sizes: tuple[tuple[int, int], ...] = JOINT_SIZES, n_trains: tuple[int, ...] = JOINT_N,
                 seeds: tuple[int, ...] = JOINT_SEEDS) -> pd.DataFrame:  # fmt: skip
    frame = joint_runs(sizes=sizes, n_trains=n_trains, seeds=seeds, noise=JOINT_NOISE, rng_seed=rng_seed)
    return frame[frame["stage"] == "scratch"].reset_index(drop=True)


def optimum_width(frame: pd.DataFrame, target: str, n_boot: int) -> float:
    """The width of the log of P*'s interval as the report computes it (``decade_optima``, ``optimum_claims``)."""
    laws = fit_laws(frame, fit_curves(frame, n_boot=0), n_boot=n_boot)
    pts = downstream_points(frame).merge(run_compute(frame, frame_jobs(frame)), on="id")
    claims = pd.DataFrame(optimum_claims(decade_optima(pts, laws.fits, laws.group_columns), laws.group_columns))
    row = claims.set_index("id").loc[target] if len(claims) and target in set(claims["id"]) else None
    return math.log(row["hi"] / row["lo"]) if row is not None and row["lo"] > 0 else math.inf


@functools.cache
def _joint_run(n: int, seed: int, size: Size) -> pd.DataFrame:
    """The noise-free row of a joint-law scratch run at ``n``, ``seed`` and model ``size``."""
    return joint_runs(sizes=((dict(size)["model.width"], dict(size)["model.modes"]),), n_trains=(n,), seeds=(seed,),
                      noise=0.0).query("stage == 'scratch'")  # fmt: skip


@functools.cache
def _flops(n: int, size: Size) -> float:
    """The FLOPs the cost estimate counts for a joint-law scratch run at ``n`` and model ``size``."""
    return _estimated(_joint_run(n, 0, size))


def _estimated(frame: pd.DataFrame) -> float:
    """The FLOPs the cost estimate (``harness.sweep.estimate.estimate``) counts for the jobs of ``frame``."""
    return float(estimate(frame_jobs(frame), 1.0)["total"].flops)


def _joint_added(frame: pd.DataFrame, runs: list[tuple[int, int, Size]], draw: int) -> pd.DataFrame:
    """``frame`` with one run of the joint law per (N, seed, size) of ``runs``, with the log-normal noise of
    ``joint_runs`` (the same for the same run of the same draw)."""
    new = pd.concat([_joint_run(*run) for run in runs], ignore_index=True) if runs else frame.iloc[:0]
    noise = [np.random.default_rng(zlib.crc32(f"{draw}-{run}".encode())).normal(0.0, JOINT_NOISE) for run in runs]
    new = new.assign(test_rel_l2=new["test_rel_l2"] * np.exp(noise))
    return pd.concat([frame, new.assign(best_val_rel_l2=new["test_rel_l2"] * 1.02)], ignore_index=True)


def _share(total: float, curve: int, n: int, seed: int, size: Size) -> float:
    """A candidate's cost as a share of ``total`` FLOPs."""
    return _flops(n, size) / total


def check_optimum(target: str = JOINT_TARGET, *, draws: int, n_boot: int, k: int = JOINT_K) -> dict[str, float]:
    """As ``check`` for a compute-optimal size on joint-law sweeps (the module docstring), with the mean cost of
    the picked and the uniform runs as shares of the sweep's FLOPs."""
    picked, uniform, costs = [], [], []
    for draw in range(draws):
        frame = _joint_sweep(draw)
        resolved = resolve(target, frame, fit_curves(frame, n_boot=0), frame_jobs(frame))
        cost = functools.partial(_share, _estimated(frame))
        chosen = pick(resolved, cost, JOINT_BUDGET, k)
        spent = sum(p.hours for p in chosen)
        drawn = _uniform(resolved, len(resolved.designs[0].candidates()) * k, np.random.default_rng(draw), cost, spent)
        before = optimum_width(frame, target, n_boot)
        picked.append(optimum_width(_joint_added(frame, [(p.n, p.seed, p.size) for p in chosen], draw), target,
                                    n_boot) / before)  # fmt: skip
        uniform.append(optimum_width(_joint_added(frame, [run for _, *run in drawn], draw), target, n_boot) / before)
        costs.append((spent, sum(cost(*run) for run in drawn)))  # the same FLOPs: at most the picked runs' cost
    p, u, c = np.array(picked), np.array(uniform), np.array(costs)
    return {"picked": float(np.median(p)), "uniform": float(np.median(u)), "better": float(np.mean(p < u)),
            "picked_cost": float(c[:, 0].mean()), "uniform_cost": float(c[:, 1].mean())}  # fmt: skip


def _uniform(resolved: Resolved, k: int, rng: np.random.Generator, cost: Callable[..., float] = lambda *_: 0.0,
             budget: float = math.inf) -> list[tuple]:  # fmt: skip
    """Up to k runs (curve, N, seed[, size]) drawn one after the other uniformly from the candidates (which change
    as runs are added) that fit what is left of ``budget`` at ``cost`` (``analysis.suggest.pick``'s)."""
    designs, out, spent = list(resolved.designs), [], 0.0
    for _ in range(k):
        options = [(i, *run) for i, d in enumerate(designs) for run in d.candidates()
                   if spent + cost(i, *run) <= budget]  # fmt: skip
        if not options:
            break
        i, *run = options[rng.integers(len(options))]
        designs[i] = designs[i].with_run(*run)
        spent += cost(i, *run)
        out.append((i, *run))
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
        if target.startswith("popt"):
            r = check_optimum(target, draws=args.draws, n_boot=args.n_boot)
            cost = f"; cost {r['picked_cost']:.0%} and {r['uniform_cost']:.0%} of the sweep's FLOPs (at most {JOINT_K}"
            note = f"{cost} runs within {JOINT_BUDGET:.0%}; joint law, sizes {JOINT_SIZES} x N {JOINT_N} x seeds " \
                   f"{JOINT_SEEDS}, noise {JOINT_NOISE})"
        else:
            r, note = check(target, draws=args.draws, k=args.k, n_boot=args.n_boot), ""
        print(f"{target:<34} {r['picked']:8.3f} {r['uniform']:8.3f} {r['better']:13.0%}{note}", flush=True)


if __name__ == "__main__":
    main()
