"""Which extra runs would sharpen a claim most (``harness suggest``): candidate runs on the curves the claim rests on,
each one's expected shrinkage of the claim's interval, and a greedy pick per unit cost under a budget.

Targets are claims, named as claims.csv names them (``TARGETS``, one ``Target`` per kind: its id form and how it
lists its claims, each with the curves it rests on and its value from their parameters; a new kind is one entry):
a curve's fitted exponent ``b.<stage>.<curve>``, the fit-based data-efficiency multiplier ``multfit.<curve>.n<N>``
and the compute-optimal model size ``popt.<stage>.<group>.c1e<k>`` (and ``popt_amortised.``, ``popt_full.``: P* of
a joint law at a power of ten of compute, ``analysis.optimal``; its design and candidates, over model sizes as well
as N and seeds, are ``analysis.suggest_joint``'s; its gradient is that of log P* through ``Allocation.optimum``).

Candidates: on each curve a target rests on, one run at each N of the curve's grid and at the next N down and up in
the grid's own (geometric) spacing, with the first of the curve's seeds not yet run at that N (a new seed, one above
the largest, where every seed has run there), so both "another N" and "another seed at an existing N" compete.

The shrinkage approximation (linearised least squares; no refit, no simulated data): a curve's fit is read as least
squares in log space, log err = log(a N^-b + c) + e with e ~ Normal(0, sigma^2), sigma the fit's log-space rmse
corrected for its parameters (sqrt(n / (n - k)) rmse). Its parameters p = (log a, b[, c]) then have covariance
sigma^2 (J'J)^-1, J the law's Jacobian at the fitted p over the runs' N (the Fisher information), and the target the
delta-method variance g' C g (g: its numerical gradient in p, summed over the curves it rests on). The interval is
read as 2 t_{0.975, df} sqrt(g' C g), df = runs - parameters (the fewest over the curves), as the residual
bootstrap's t-corrected interval is (``analysis.intervals``). A candidate adds one row to J at its N: a run with the
fit's predicted error and the observed noise scale. Its expected shrinkage is 1 - (width with it) / (width now); a
curve that reaches MIN_N_OFFSET distinct N gains the floor c (at its fitted value, 0 for a pure law) as the report's
fit would, which can widen the interval. Left out: the parameter bounds (b >= 0, 0 <= c < min err: an estimate at a
bound has a narrower bootstrap interval than the linearisation says), noise that changes with N, and the
seed-cluster bootstrap from 10 seeds on (read as a residual t interval here).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import yaml
from scipy.stats import t as student_t

from analysis.claims import curve_id, extra_axes, key_values, optimum_id
from analysis.compute import run_compute
from analysis.curves import ERR, MIN_N_OFFSET, CurveFits, N, curves, downstream_points, label_key, pairs, primary
from analysis.intervals import LEVEL
from analysis.laws import fit_laws
from analysis.load import ReportError
from analysis.multipliers import SMALL_N
from analysis.optimal import Allocation, allocations, decades
from analysis.powerlaw import power_law_model
from analysis.suggest_joint import JointDesign, Size, free_seed, grid_steps, joint_design
from analysis.transfer import joint_values
from harness.job import Job

Label = tuple[str, ...]
Value = Callable[[Sequence[np.ndarray]], float]  # a target from its curves' parameter rows (log a, b, c)


@dataclass(frozen=True)
class Design:
    """One curve a target rests on: its fitted (log a, b, c) (c = 0 for a pure law), its log-space noise scale, its
    runs as (N, seed) and the N grid candidates are drawn around (the curve's sampled N)."""

    label: Label
    params: np.ndarray
    sigma: float
    runs: tuple[tuple[int, int], ...]
    grid: tuple[int, ...]
    ids: tuple[str, ...] = ()
    step: ClassVar[float] = 1e-6  # relative step of the gradient

    @property
    def k(self) -> int:
        """Parameters of the law the report fits to these runs (the floor c from MIN_N_OFFSET distinct N)."""
        return 3 if len({n for n, _ in self.runs}) >= MIN_N_OFFSET else 2

    def covariance(self) -> np.ndarray:
        """sigma^2 (J'J)^-1 of (log a, b[, c]) at the fitted parameters over the runs' N."""
        x = np.log(np.array([n for n, _ in self.runs], dtype=float))
        _, jac = power_law_model(x, self.k == 3)(self.params[None, : self.k], True)
        return self.sigma**2 * np.linalg.pinv(jac[0].T @ jac[0])

    def with_run(self, n: int, seed: int) -> Design:
        """This curve with one more run."""
        return replace(self, runs=(*self.runs, (n, seed)))

    def candidates(self) -> list[tuple[int, int]]:
        """(N, seed) of one more run at each N of the grid and the next N down and up in its spacing."""
        seeds = sorted({s for _, s in self.runs})
        return [(n, free_seed([s for m, s in self.runs if m == n], seeds)) for n in grid_steps(self.grid)]


@dataclass(frozen=True)
class Resolved:
    """A target on a sweep's fits: its id, what its interval's width is of, the curves it rests on and its value
    from their parameters."""

    target: str
    scale: str
    designs: tuple[Design | JointDesign, ...]
    value: Value


@dataclass(frozen=True)
class Pick:
    """A suggested run: on ``designs[curve]`` of the target, at N ``n`` with ``seed`` (and model ``size`` for a joint
    law's); its cost, its expected shrinkage of the interval (1 - width after / width before it), the width after it."""

    curve: int
    n: int
    seed: int
    hours: float
    shrinkage: float
    width: float
    size: Size = ()


def gradients(value: Value, designs: Sequence[Design | JointDesign]) -> list[np.ndarray]:
    """The target's gradient in each design's parameters, by central differences."""
    params = [d.params for d in designs]
    return [_gradient(lambda p, i=i: value([*params[:i], p, *params[i + 1:]]), d.params, d.step)
            for i, d in enumerate(designs)]  # fmt: skip


def width(value: Value, designs: Sequence[Design | JointDesign], grads: Sequence[np.ndarray] | None = None) -> float:
    """The expected width of the target's interval on these designs (the module docstring): 2 t sqrt(g' C g);
    ``grads``: ``gradients(value, designs)`` where already known (they do not change with the runs); a curve's
    law has the floor c (its third parameter) from MIN_N_OFFSET distinct N on."""
    var = 0.0
    for g, d in zip(grads or gradients(value, designs), designs, strict=True):
        var += float(g[: d.k] @ d.covariance() @ g[: d.k])
    df = min(len(d.runs) - d.k for d in designs)
    if df < 1 or not np.isfinite(var):
        return math.inf
    return 2 * float(student_t.ppf(0.5 + LEVEL / 2, df)) * math.sqrt(max(var, 0.0))


def _gradient(f: Callable[[np.ndarray], float], p: np.ndarray, step: float) -> np.ndarray:
    """Central-difference gradient of ``f`` at ``p`` (steps ``step`` times the parameter, at least ``step``)."""
    out = np.empty(len(p))
    for j in range(len(p)):
        h = step * max(1.0, abs(p[j]))
        e = np.zeros(len(p))
        e[j] = h
        out[j] = (f(p + e) - f(p - e)) / (2 * h)
    return out


def pick(resolved: Resolved, cost: Callable[..., float], budget: float, k: int | None = None) -> list[Pick]:
    """Greedy picks of candidate runs until the ``budget`` (in ``cost``'s unit, e.g. device-hours) or ``k`` runs:
    each round takes the candidate with the largest expected narrowing of the interval per unit cost among those
    that still fit the budget (``cost(curve, n, seed)``, ``cost(curve, n, seed, size)`` on a joint law), then adds
    it to its design; it stops when no candidate fits or none narrows the interval."""
    designs = list(resolved.designs)
    grads = gradients(resolved.value, designs)
    now, spent, picks = width(resolved.value, designs, grads), 0.0, []
    while k is None or len(picks) < k:
        best: tuple[float, Pick, tuple] | None = None
        for i, d in enumerate(designs):
            for run in d.candidates():
                hours = cost(i, *run)
                if spent + hours > budget:
                    continue
                after = width(resolved.value, [*designs[:i], d.with_run(*run), *designs[i + 1:]], grads)
                score = (now - after) / max(hours, 1e-12)
                if score > 0 and (best is None or score > best[0]):
                    best = score, Pick(i, run[0], run[1], hours, 1 - after / now, after, *run[2:]), run
        if best is None:
            break
        chosen = best[1]
        designs[chosen.curve] = designs[chosen.curve].with_run(*best[2])
        now, spent = chosen.width, spent + chosen.hours
        picks.append(chosen)
    return picks


# -- targets --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Curves:
    """A sweep's trained curves: their runs by label, the fits and their key columns; its ok runs and the plan's
    jobs (none: no compute, so no compute-optimal target)."""

    groups: dict[Label, pd.DataFrame]
    fits: CurveFits
    pts: pd.DataFrame
    runs: pd.DataFrame
    jobs: tuple[Job, ...] = ()

    @classmethod
    def of(cls, runs: pd.DataFrame, fits: CurveFits, jobs: Sequence[Job] = ()) -> Curves:
        """The curves of a sweep's ok runs and their fits (``analysis.curves.fit_curves``), the plan's ``jobs``."""
        pts = downstream_points(runs)
        trained = pts[pts["stage"].isin(["finetune", "scratch"])]
        return cls({label_key(key): g for key, g in curves(trained, fits.key_columns)}, fits, pts, runs, tuple(jobs))

    def base_id(self, rows: pd.DataFrame) -> tuple[str, str]:
        """(stage, curve id) of a curve's rows, as claims name them."""
        keys = self.fits.key_columns
        values = key_values(keys, tuple(rows[keys].iloc[0]))
        return str(values["stage"]), curve_id(values, extra_axes(keys))


Claims = dict[str, tuple[Callable[[], tuple[Any, ...]], Value]]  # id -> (its designs, when asked for; its value)


@dataclass(frozen=True)
class Target:
    """A kind of claim suggest can sharpen: its name, its id form, what its interval's width is measured on
    (``scale``), and its claims in a sweep (id -> the labels of the curves it rests on, and its value from their
    parameters)."""

    kind: str
    form: str
    scale: str
    claims: Callable[[Curves], Claims]


def _exponents(c: Curves) -> Claims:
    """b.<stage>.<curve>: a curve's fitted exponent."""
    out: Claims = {}
    for label, rows in c.groups.items():
        stage, curve = c.base_id(rows)
        cid = f"b.{stage}.{curve}"
        out[cid] = (partial(_designs, cid, (label,), c), lambda ps: float(ps[0][1]))
    return out


def _log_n_for(p: np.ndarray, target: float) -> float:
    """log of the N at which the law (log a, b, c) reaches ``target`` (nan where it never does)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(-(np.log(target - p[2]) - p[0]) / p[1]) if p[1] > 0 else math.nan


def _multipliers(c: Curves) -> Claims:
    """multfit.<curve>.n<N>: n_scratch / n_finetune at the fine-tuned mean error at N (log of it, for the variance),
    at the fine-tuned curve's SMALL_N smallest N, as ``analysis.multipliers`` reports it."""
    out: Claims = {}
    keys = c.fits.key_columns
    for ft, sc in pairs(primary(c.pts), keys):
        _, curve = c.base_id(ft)
        labels = (label_key(tuple(sc[keys].iloc[0])), label_key(tuple(ft[keys].iloc[0])))
        for n, at in list(ft.groupby(N, sort=True))[:SMALL_N]:
            t = float(at[ERR].mean())
            cid = f"multfit.{curve}.n{int(n)}"
            out[cid] = (partial(_designs, cid, labels, c), lambda ps, t=t: _log_n_for(ps[0], t) - _log_n_for(ps[1], t))
    return out


def _optima(c: Curves) -> Claims:
    """popt.<stage>.<group>.c1e<k> (and popt_amortised., popt_full.): P* of a group's joint law at a power of ten of
    its compute (log of it, for the variance), as ``analysis.claims`` names them; none without the plan's jobs."""
    if not c.jobs:
        return {}
    laws = fit_laws(c.runs, c.fits, n_boot=0)
    pts = c.pts.merge(run_compute(c.runs, list(c.jobs)), on="id")
    out: Claims = {}
    for (label, counting), alloc in allocations(pts, laws.fits, laws.group_columns)[0].items():
        values = key_values(laws.group_columns, tuple(alloc.rows[laws.group_columns].iloc[0]))
        e, a_coef, a, b_coef, b = alloc.fit.values
        q = np.array([math.log(a_coef), a, math.log(b_coef), b, e])
        designs = partial(lambda *args: (joint_design(*args),), label, alloc.rows, q, alloc.fit.rmse, c.jobs)
        for compute in decades(alloc.spent):
            cid = optimum_id(values, laws.group_columns, counting, compute)
            out[cid] = (designs, partial(_log_p_opt, alloc, compute))
    return out


def _log_p_opt(alloc: Allocation, compute: float, ps: Sequence[np.ndarray]) -> float:
    """log P* at ``compute`` of the joint law q = ``ps[0]`` (``joint_model``'s order) under ``alloc``'s compute."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.log(alloc.optimum(joint_values(ps[0][None, :]), np.array([compute]))[0][0, 0]))


TARGETS = (
    Target("exponent", "b.<stage>.<curve>", "the exponent", _exponents),
    Target("multiplier", "multfit.<curve>.n<N>", "the log of the multiplier", _multipliers),
    Target("compute-optimal size", "popt.<stage>.<group>.c1e<k>", "the log of P*", _optima),
)


def resolve(target: str, runs: pd.DataFrame, fits: CurveFits, jobs: Sequence[Job] = ()) -> Resolved:
    """The target named ``target`` on a sweep's ok ``runs``, their ``fits`` and the plan's ``jobs``; ReportError (one
    line naming --target, the value and the fix) when no claim of the sweep has that id or its curves are too few to
    fit."""
    c = Curves.of(runs, fits, jobs)
    claims: Claims = {}
    scales: dict[str, str] = {}
    for kind in TARGETS:
        found = kind.claims(c)
        claims |= found
        scales |= dict.fromkeys(found, kind.scale)
    if target not in claims:
        close = difflib.get_close_matches(target, list(claims), n=3)
        some = close or sorted(claims)[:3]
        forms = ", ".join(kind.form for kind in TARGETS)
        raise ReportError(f"--target {target}: no such target in this sweep (targets: {forms}); use one of its "
                          f"claims.csv ids, e.g. {', '.join(some) or 'none: the sweep has no trained curve'}")
    make, value = claims[target]
    designs = make()
    if not np.isfinite(value([d.params for d in designs])):
        raise ReportError(f"--target {target}: the fits never reach it (no value to sharpen); pick another claim")
    return Resolved(target, scales[target], designs, value)


def _designs(target: str, labels: tuple[Label, ...], c: Curves) -> tuple[Design, ...]:
    return tuple(_design(target, label, c) for label in labels)


def _design(target: str, label: Label, c: Curves) -> Design:
    """The design of one curve of a target, or ReportError when its runs are too few to fit with an interval."""
    rows, fit = c.groups[label], c.fits.fits.get(label)
    runs = tuple(zip(rows[N].astype(int).tolist(), rows["seed"].astype(int).tolist(), strict=True))
    k = 2 if fit is None else (3 if fit.offset else 2)
    if fit is None or len(runs) <= k:
        stage, curve = c.base_id(rows)
        raise ReportError(f"--target {target}: its {stage} curve {curve} has {len(runs)} run(s) at "
                          f"{rows[N].nunique()} distinct N, too few to fit with an interval (needs >= 2 distinct N and "
                          f"more runs than the law's {k} parameters); add N or seeds to the sweep and run them first")
    sigma = fit.rmse * math.sqrt(len(runs) / (len(runs) - k))
    grid = tuple(sorted({n for n, _ in runs}))
    return Design(label, np.array([math.log(fit.a), fit.b, fit.c]), sigma, runs, grid, tuple(rows["id"]))


def include_block(points: Sequence[dict], existing: Sequence[dict] = ()) -> str:
    """The sweep file's ``include:`` block with ``points`` after the ``existing`` entries, one flow mapping a line."""
    lines = [yaml.safe_dump(dict(p), default_flow_style=True, sort_keys=False, width=10**6).strip()
             for p in (*existing, *points)]  # fmt: skip
    return "include:\n" + "".join(f"  - {line}\n" for line in lines)
