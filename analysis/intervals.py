"""Intervals that mean what they say: how a fit is resampled, how its interval is read from the resamples, and what
the interval is called.

The rule (``basis``), one per fit, from its design alone:

- **Residual bootstrap within the design** (the default; fewer than CLUSTER_SEEDS distinct seeds). The runs keep
  their design points (N, seed); each resample redraws their noise: the fit's log-space residuals, leverage-adjusted
  (r / sqrt(1 - h), h the diagonal of the hat matrix J (J'J)^-1 J' at the fit) and centred, drawn with replacement
  over all the runs, then multiplied by one factor per resample, sqrt(df / chi2_df) with df = runs - parameters (a
  draw of the noise scale's own uncertainty). Without that factor the resamples know the noise only as well as the
  residuals happened to show it, and the interval is a normal one where a Student t one is due: on 4 runs of a
  2-parameter law (2 df) the factor widens it by 4.30 / 1.96. With it, the central 95 % of the refits is a t
  interval for a linear law. Measured on synthetic curves with known exponents (``analysis.coverage``: 4 and 6
  distinct N, 1, 2, 3, 5 and 10 seeds, pure law and with a floor, 200 draws each), the interval for the exponent
  covers the truth in 91.5-98 % of draws in every cell labelled 95 %; resampling whole seeds read at 95 % covered
  45-51 % with two seeds, 72-77 % with three and 84-93 % with five to eight. It assumes the runs' log errors scatter
  independently and alike about the law (a relative noise the same at every N); with ``data_seed`` following
  ``seed`` each run draws its own data and initialisation, so that holds by design.
- **Seed-cluster bootstrap** from CLUSTER_SEEDS distinct seeds on: whole seeds are drawn with replacement (every
  run of a seed weighted by its count), which assumes nothing about how a seed's runs at different N are related.
  A percentile interval of S resampled clusters is too narrow by sqrt((S - 1) / S) and has normal, not t, tails, so
  it is read at the expanded level (Hesterberg 2015, "What teachers should know about the bootstrap"): the central
  share 2 Phi(z') - 1 with z' = sqrt(S / (S - 1)) t_{0.975, S - 1}, 98.3 % at 10 seeds. 10 is where that works:
  the expanded tail (0.85 %) is still about 9 of 1,000 resamples and there are 92,378 distinct resamples; at 5
  seeds the tail would be 0.1 % (one resample) and only 126 resamples exist. Read so, 10 seeds covered 94.5-97.5 %.

An interval is labelled "95 %" only when its design supports one: at least MIN_DF residual degrees of freedom (the
noise is estimated from 0 or 1 degree of freedom otherwise), at least SHAPE_DF distinct design points beyond the
parameters (with fewer, e.g. a floor law's 3 parameters from 4 distinct N, the data cannot check the law's form,
which the interval takes for granted), and at least MIN_RESAMPLES distinct resamples. Otherwise the label says what
the interval is and why it is not a 95 % one; with no residual degree of freedom there is no interval at all.

Quantities derived from several fits (a multiplier from two curves) combine their bases (``combine``): the weaker
label, the wider reading level. Means over seeds have their own two schemes (``mean_draws``, ``seed_interval``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from scipy.stats import norm
from scipy.stats import t as student_t

from analysis.robust import Model

LEVEL = 0.95  # the nominal level of every interval
MIN_DF = 2  # residual degrees of freedom a 95 % interval needs
SHAPE_DF = 2  # distinct design points beyond the parameters a 95 % interval needs (the law's form is checked)
CLUSTER_SEEDS = 10  # distinct seeds from which whole seeds are resampled (see the module docstring)
MIN_RESAMPLES = 100  # distinct resamples below which a percentile interval is not a 95 % one
MAX_LEVERAGE = 0.95  # leverage cap of the adjusted residuals r / sqrt(1 - h): a point that alone fixes a parameter
_MANY = 10**9  # the cap on a count of distinct resamples (n^n grows fast): "at least this many"

RESIDUAL, CLUSTER, MEANS, RANGE, NONE = "residual", "seed-cluster", "t-means", "range", "none"


@dataclass(frozen=True)
class Basis:
    """What an interval rests on: the resampling ``kind``, its degrees of freedom (residual df; seeds - 1 for the
    seed-cluster bootstrap; pooled within-N df for means), the distinct resamples it could draw, the central share
    of the draws read as the interval (``level``), and, when it is not a 95 % interval, why (``why``)."""

    kind: str
    df: int
    resamples: int
    level: float = LEVEL
    why: str = ""

    @property
    def valid(self) -> bool:
        """Whether the interval is labelled a 95 % confidence interval."""
        return not self.why and self.kind != NONE

    @property
    def label(self) -> str:
        """What the interval is, in words: "95 % (residual bootstrap, t with 5 df)", or what it is instead and why."""
        if self.kind == NONE:
            return f"no interval: {self.why}"
        what = {
            RESIDUAL: f"residual bootstrap, t with {self.df} df" if self.df >= MIN_DF else
            f"residual bootstrap, {self.df} df, no t correction",
            CLUSTER: f"bootstrap over {self.df + 1} seeds, expanded percentile",
            MEANS: f"t over seeds, {self.df} df",
            RANGE: f"range over {self.df + 1} seeds",
        }[self.kind]
        if self.kind == RANGE:  # says what it is: two seeds give a range, never a confidence interval
            return what
        return f"95 % ({what})" if self.valid else f"{what}; not a 95 % interval: {self.why}"


def is_95(label: str) -> bool:
    """Whether an interval's label (``Basis.label``, as the tables store it) names a 95 % confidence interval."""
    return str(label).startswith("95 % (")


def fit_basis(n_points: int, n_params: int, n_designs: int, groups: np.ndarray | None, *, what: str = "N") -> Basis:
    """The basis of a fit of ``n_params`` parameters to ``n_points`` runs at ``n_designs`` distinct design points
    (``what``: their name, e.g. "N"), whose runs carry the seed labels ``groups`` (None: independent runs)."""
    df = n_points - n_params
    if df <= 0:
        return Basis(NONE, df, 0, why=f"{n_points} runs for {n_params} parameters leave no residual")
    seeds = len(np.unique(np.asarray(groups).astype(str))) if groups is not None else 0
    if seeds >= CLUSTER_SEEDS:
        z = math.sqrt(seeds / (seeds - 1)) * float(student_t.ppf(0.5 + LEVEL / 2, seeds - 1))
        basis = Basis(CLUSTER, seeds - 1, min(math.comb(2 * seeds - 1, seeds), _MANY), 2 * float(norm.cdf(z)) - 1)
    else:
        basis = Basis(RESIDUAL, df, min(n_points ** min(n_points, 10), _MANY))
    if df < MIN_DF:
        why = f"{n_points} runs for {n_params} parameters leave {_dof(df)} for the noise (needs {MIN_DF})"
    elif too_few_designs(n_designs, n_params):
        why = (f"{n_params} parameters from {n_designs} distinct {what} leave {_dof(max(n_designs - n_params, 0))} to "
               f"check the law's form (needs {SHAPE_DF})")  # fmt: skip
    elif basis.resamples < MIN_RESAMPLES:
        why = f"only {basis.resamples} distinct resamples (needs {MIN_RESAMPLES})"
    else:
        why = ""
    return replace(basis, why=why)


def _dof(df: int) -> str:
    return f"{df} degree{'' if df == 1 else 's'} of freedom"


def too_few_designs(n_designs: int, n_params: int) -> bool:
    """Whether ``n_designs`` distinct design points leave fewer than SHAPE_DF degrees of freedom beyond ``n_params``
    parameters to check a law's form (the report's few-N flag)."""
    return n_designs - n_params < SHAPE_DF


def combine(*bases: Basis) -> Basis:
    """The basis of a quantity computed from draws of several fits, paired by index: the weakest basis (one that is
    not a 95 % interval first, then the fewest degrees of freedom), read at the widest level of them all."""
    weakest = min(bases, key=lambda b: (b.valid, b.kind != NONE, b.df))
    return replace(weakest, level=max(b.level for b in bases))


@dataclass(frozen=True)
class Resamples:
    """A fit's resamples: the log-space targets ``y`` (B, n) and weights ``w`` (B, n) each refit uses, the noise
    scale ``sigma`` (B,) each resample was drawn with (its runs' log-space standard deviation), and the basis."""

    y: np.ndarray
    w: np.ndarray
    sigma: np.ndarray
    basis: Basis


def resample(
    model: Model, inv: np.ndarray, y: np.ndarray, p: np.ndarray, basis: Basis, n_boot: int, seed: int,
    groups: np.ndarray | None = None, used: np.ndarray | None = None,
) -> Resamples:  # fmt: skip
    """``n_boot`` resamples of the points ``y`` (log space; design ``inv``) about the fit ``p`` of ``model``, as
    ``basis`` says: residuals redrawn within the design, or whole ``groups`` drawn. ``used`` marks the points the fit
    used (others get weight 0)."""
    used = np.ones(len(y), dtype=bool) if used is None else np.asarray(used, dtype=bool)
    f, jac = model(p[None, :], True)
    f_hat, jac = f[0][inv], jac[0][inv]
    r = (y - f_hat)[used]
    rng = np.random.default_rng(seed)
    if n_boot <= 0 or basis.kind == NONE:
        return Resamples(np.empty((0, len(y))), np.empty((0, len(y))), np.empty(0), basis)
    if basis.kind == CLUSTER:
        w = resample_weights(len(y), n_boot, rng, groups) * used
        sigma = np.full(n_boot, math.sqrt(float(r @ r) / max(len(r) - len(p), 1)))  # the residual df, not the seeds'
        return Resamples(np.broadcast_to(y, (n_boot, len(y))), w, sigma, basis)
    j = jac[used]
    h = np.einsum("ij,jk,ik->i", j, np.linalg.pinv(j.T @ j), j)
    adjusted = r / np.sqrt(1 - np.minimum(h, MAX_LEVERAGE))
    adjusted -= adjusted.mean()
    scale = noise_scale(basis.df, n_boot, rng)
    rows = np.repeat(f_hat[None, :], n_boot, axis=0)
    rows[:, used] += adjusted[rng.integers(0, len(adjusted), (n_boot, len(adjusted)))] * scale[:, None]
    w = np.repeat(used[None, :].astype(float), n_boot, axis=0)
    return Resamples(rows, w, math.sqrt(float(adjusted @ adjusted) / len(adjusted)) * scale, basis)


def noise_scale(df: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Per resample, sqrt(df / chi2_df): the noise scale's own uncertainty with ``df`` degrees of freedom (1 below
    MIN_DF, where it is not estimated)."""
    return np.sqrt(df / rng.chisquare(df, n_boot)) if df >= MIN_DF else np.ones(n_boot)


def resample_weights(n_points: int, n_boot: int, rng: np.random.Generator, groups: np.ndarray | None) -> np.ndarray:
    """``n_boot`` bootstrap resamples as integer weights over the points, shape (n_boot, n_points): whole ``groups``
    (one label per point, e.g. the seed) drawn with replacement, every point of a group getting its group's count;
    without groups, points are drawn."""
    codes = np.arange(n_points)
    if groups is not None:
        codes = np.unique(np.asarray(groups).astype(str), return_inverse=True)[1]
    k = codes.max() + 1
    draws = rng.integers(0, k, size=(n_boot, k))
    counts = np.bincount((draws + k * np.arange(n_boot)[:, None]).ravel(), minlength=n_boot * k)
    return counts.reshape(n_boot, k)[:, codes].astype(float)


def interval(samples: np.ndarray, basis: Basis) -> tuple[float, float]:
    """The central ``basis.level`` percentile interval of the finite-or-infinite samples (nan ones ignored); nan when
    there are none or the basis has no interval."""
    samples = np.asarray(samples, dtype=float)
    samples = samples[~np.isnan(samples)]
    if len(samples) == 0 or basis.kind == NONE:
        return float("nan"), float("nan")
    q = 50 * (1 - basis.level)
    lo, hi = np.percentile(samples, [q, 100 - q], method="linear" if np.isfinite(samples).all() else "inverted_cdf")
    return float(lo), float(hi)


def mean_draws(values: list[np.ndarray], n_boot: int, rng: np.random.Generator) -> tuple[np.ndarray, Basis]:
    """Draws (n_boot, m) of the mean error at each of m design points whose runs gave ``values`` (one array each).

    Each draw is exp(log mean + s z / sqrt(S_i) g): s the log-space spread within the design points, pooled
    (df = sum of S_i - 1; it assumes the spread is alike at every point), z standard normal, g = sqrt(df / chi2_df)
    one per draw, so that the percentile interval of anything read from the draws is a t one."""
    counts = np.array([len(v) for v in values])
    logs = [np.log(np.asarray(v, dtype=float)) for v in values]
    df = int((counts - 1).sum())
    centre = np.log([float(np.mean(v)) for v in values])
    if df <= 0:
        why = "a single run at every N"
        return np.broadcast_to(np.exp(centre), (n_boot, len(values))), Basis(NONE, 0, 0, why=why)
    s = math.sqrt(sum(float(((v - v.mean()) ** 2).sum()) for v in logs) / df)
    z = rng.standard_normal((n_boot, len(values)))
    draws = np.exp(centre + s * z / np.sqrt(counts) * noise_scale(df, n_boot, rng)[:, None])
    why = "" if df >= MIN_DF else f"the spread over seeds has {_dof(df)} (needs {MIN_DF})"
    return draws, Basis(MEANS, df, _MANY, why=why)


def seed_interval(values: np.ndarray) -> tuple[float, float, Basis]:
    """An interval for the mean of ``values`` (one per seed): a t interval from 3 seeds on, the range over 2 seeds
    (too few for a 95 % interval), none for one."""
    lo, hi, basis = _over_seeds(np.asarray(values, dtype=float), "a single run")
    return (max(lo, 0.0) if basis.kind == MEANS else lo), hi, basis


def _over_seeds(v: np.ndarray, single: str) -> tuple[float, float, Basis]:
    """The mean of ``v`` (one value per seed) -/+ the t half-width from 3 values on, (min, max) with 2, (nan, nan)
    with 1 (``single``: why there is no interval)."""
    if len(v) < 2:
        return float("nan"), float("nan"), Basis(NONE, 0, 0, why=single)
    if len(v) == 2:
        return float(v.min()), float(v.max()), Basis(RANGE, 1, 3, why="two seeds are too few")
    half = float(student_t.ppf(0.5 + LEVEL / 2, len(v) - 1)) * float(v.std(ddof=1)) / math.sqrt(len(v))
    return float(v.mean()) - half, float(v.mean()) + half, Basis(MEANS, len(v) - 1, _MANY)


def ratio_interval(top: np.ndarray, bottom: np.ndarray) -> tuple[float, float, Basis]:
    """An interval for mean(``top``) / mean(``bottom``) (each one value per seed, positive): a Welch t interval of the
    log ratio (delta method) when both have 3 seeds or more; the range over the seeds' ratios (min top / max bottom to
    max top / min bottom) with 2; none with a single run on either side."""
    top, bottom = np.asarray(top, dtype=float), np.asarray(bottom, dtype=float)
    seeds = min(len(top), len(bottom))
    if seeds < 2:
        return float("nan"), float("nan"), Basis(NONE, 0, 0, why="a single run on one side")
    if seeds == 2:
        basis = Basis(RANGE, 1, 9, why="two seeds are too few")
        return float(top.min() / bottom.max()), float(top.max() / bottom.min()), basis
    parts = [(v.std(ddof=1) / v.mean()) ** 2 / len(v) for v in (top, bottom)]
    se = math.sqrt(sum(parts))
    df = int(sum(parts) ** 2 / sum(p**2 / (len(v) - 1) for p, v in zip(parts, (top, bottom), strict=True))) if se else 2
    ratio = float(top.mean() / bottom.mean())
    half = float(student_t.ppf(0.5 + LEVEL / 2, max(df, 1))) * se
    return ratio * math.exp(-half), ratio * math.exp(half), Basis(MEANS, df, _MANY)


def paired_ratio_interval(top: np.ndarray, bottom: np.ndarray) -> tuple[float, float, float, Basis]:
    """The geometric mean of the seed-paired ratios ``top`` / ``bottom`` (one pair per seed, positive) and an
    interval for it: a t interval of the mean log ratio from 3 pairs on, the range of the ratios with 2, none with 1.
    Pairing removes what the two runs of a seed share (its data, its initialisation) from the spread."""
    logs = np.log(np.asarray(top, dtype=float) / np.asarray(bottom, dtype=float))
    lo, hi, basis = _over_seeds(logs, "a single pair")
    return float(np.exp(logs.mean())), float(np.exp(lo)), float(np.exp(hi)), basis
