"""Which extra runs would sharpen a claim most (``harness suggest``): candidate runs on the curves the claim rests on,
each one's expected shrinkage of the claim's interval, and a greedy pick per unit cost under a budget.

Targets are claims, named as claims.csv names them (``TARGETS``, one ``Target`` per kind: its id form and how it
lists its claims, each with the curves it rests on and its value from their parameters; a new kind is one entry):
a curve's fitted exponent ``b.<stage>.<curve>`` and the fit-based data-efficiency multiplier ``multfit.<curve>.n<N>``.

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

import numpy as np
import pandas as pd
import yaml
from scipy.stats import t as student_t

from analysis.claims import curve_id, extra_axes, key_values
from analysis.curves import ERR, MIN_N_OFFSET, CurveFits, N, curves, downstream_points, label_key, pairs, primary
from analysis.intervals import LEVEL
from analysis.load import ReportError
from analysis.multipliers import SMALL_N
from analysis.powerlaw import power_law_model

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
        ratio = (self.grid[-1] / self.grid[0]) ** (1 / (len(self.grid) - 1))
        ns = sorted({*self.grid, *(n for n in (round(self.grid[0] / ratio), round(self.grid[-1] * ratio)) if n >= 1)})
        seeds = sorted({s for _, s in self.runs})
        out = []
        for n in ns:
            taken = {s for m, s in self.runs if m == n}
            out.append((n, next((s for s in seeds if s not in taken), seeds[-1] + 1)))
        return out


@dataclass(frozen=True)
class Resolved:
    """A target on a sweep's fits: its id, what its interval's width is of, the curves it rests on and its value
    from their parameters."""

    target: str
    scale: str
    designs: tuple[Design, ...]
    value: Value


@dataclass(frozen=True)
class Pick:
    """A suggested run: on ``designs[curve]`` of the target, at N ``n`` with ``seed``; its cost, its expected
    shrinkage of the interval (1 - width after / width before it) and the width after it."""

    curve: int
    n: int
    seed: int
    hours: float
    shrinkage: float
    width: float


def width(value: Value, designs: Sequence[Design]) -> float:
    """The expected width of the target's interval on these designs (the module docstring): 2 t sqrt(g' C g)."""
    params = [d.params for d in designs]
    var = 0.0
    for i, d in enumerate(designs):
        g = _gradient(lambda p, i=i: value([*params[:i], p, *params[i + 1:]]), d.params)[: d.k]
        var += float(g @ d.covariance() @ g)
    df = min(len(d.runs) - d.k for d in designs)
    if df < 1 or not np.isfinite(var):
        return math.inf
    return 2 * float(student_t.ppf(0.5 + LEVEL / 2, df)) * math.sqrt(max(var, 0.0))


def _gradient(f: Callable[[np.ndarray], float], p: np.ndarray) -> np.ndarray:
    """Central-difference gradient of ``f`` at ``p``."""
    out = np.empty(len(p))
    for j in range(len(p)):
        h = 1e-6 * max(1.0, abs(p[j]))
        e = np.zeros(len(p))
        e[j] = h
        out[j] = (f(p + e) - f(p - e)) / (2 * h)
    return out


def pick(resolved: Resolved, cost: Callable[[int, int, int], float], budget: float,
         k: int | None = None) -> list[Pick]:  # fmt: skip
    """Greedy picks of candidate runs until the ``budget`` (in ``cost``'s unit, e.g. device-hours) or ``k`` runs:
    each round takes the candidate with the largest expected narrowing of the interval per unit cost among those
    that still fit the budget (``cost(curve, n, seed)``), then adds it to its curve's design; it stops when no
    candidate fits or none narrows the interval."""
    designs = list(resolved.designs)
    now, spent, picks = width(resolved.value, designs), 0.0, []
    while k is None or len(picks) < k:
        best: tuple[float, Pick] | None = None
        for i, d in enumerate(designs):
            for n, seed in d.candidates():
                hours = cost(i, n, seed)
                if spent + hours > budget:
                    continue
                after = width(resolved.value, [*designs[:i], d.with_run(n, seed), *designs[i + 1:]])
                score = (now - after) / max(hours, 1e-12)
                if score > 0 and (best is None or score > best[0]):
                    best = score, Pick(i, n, seed, hours, 1 - after / now, after)
        if best is None:
            break
        chosen = best[1]
        designs[chosen.curve] = designs[chosen.curve].with_run(chosen.n, chosen.seed)
        now, spent = chosen.width, spent + chosen.hours
        picks.append(chosen)
    return picks


# -- targets --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Curves:
    """A sweep's trained curves: their runs by label, the fits and their key columns."""

    groups: dict[Label, pd.DataFrame]
    fits: CurveFits
    pts: pd.DataFrame

    @classmethod
    def of(cls, runs: pd.DataFrame, fits: CurveFits) -> Curves:
        """The curves of a sweep's ok runs and their fits (``analysis.curves.fit_curves``)."""
        pts = downstream_points(runs)
        trained = pts[pts["stage"].isin(["finetune", "scratch"])]
        return cls({label_key(key): g for key, g in curves(trained, fits.key_columns)}, fits, pts)

    def base_id(self, rows: pd.DataFrame) -> tuple[str, str]:
        """(stage, curve id) of a curve's rows, as claims name them."""
        keys = self.fits.key_columns
        values = key_values(keys, tuple(rows[keys].iloc[0]))
        return str(values["stage"]), curve_id(values, extra_axes(keys))


Claims = dict[str, tuple[tuple[Label, ...], Value]]


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
        out[f"b.{stage}.{curve}"] = ((label,), lambda ps: float(ps[0][1]))
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
            out[f"multfit.{curve}.n{int(n)}"] = (labels, lambda ps, t=t: _log_n_for(ps[0], t) - _log_n_for(ps[1], t))
    return out


TARGETS = (
    Target("exponent", "b.<stage>.<curve>", "the exponent", _exponents),
    Target("multiplier", "multfit.<curve>.n<N>", "the log of the multiplier", _multipliers),
)


def resolve(target: str, runs: pd.DataFrame, fits: CurveFits) -> Resolved:
    """The target named ``target`` on a sweep's ok ``runs`` and their ``fits``; ReportError (one line naming
    --target, the value and the fix) when no claim of the sweep has that id or its curves are too few to fit."""
    c = Curves.of(runs, fits)
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
    labels, value = claims[target]
    designs = tuple(_design(target, label, c) for label in labels)
    if not np.isfinite(value([d.params for d in designs])):
        raise ReportError(f"--target {target}: the fits never reach it (no value to sharpen); pick another claim")
    return Resolved(target, scales[target], designs, value)


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
    return Design(label, np.array([math.log(fit.a), fit.b, fit.c]), sigma, runs, grid)


def include_block(points: Sequence[dict], existing: Sequence[dict] = ()) -> str:
    """The sweep file's ``include:`` block with ``points`` after the ``existing`` entries, one flow mapping a line."""
    lines = [yaml.safe_dump(dict(p), default_flow_style=True, sort_keys=False, width=10**6).strip()
             for p in (*existing, *points)]  # fmt: skip
    return "include:\n" + "".join(f"  - {line}\n" for line in lines)
