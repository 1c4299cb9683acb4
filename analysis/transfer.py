"""Transfer scaling laws on plain arrays (beyond both papers): the effective data transferred of Hernandez et al.
(2021, "Scaling Laws for Transfer") and a joint law of error in model size and data.

- Effective data: a fine-tuned model of P parameters trained on D_F samples reaches error e; training from scratch
  needs D_E samples for the same error (read from the scratch curve's fitted power law, ``effective_data``), so the
  pretraining was worth D_T = D_E - D_F samples. ``fit_transfer`` fits D_T = k D_F^alpha P^beta (a Huber fit of
  log D_T, linear in the log parameters).
- Joint law: ``fit_joint`` fits err(P, N) = E + A P^-a + B N^-b (a Huber fit of the log residuals).

Both reuse ``analysis.robust``: the same loss (Huber, its ties broken by least squares), the same batched
Levenberg-Marquardt refits every bootstrap resample; how the runs are resampled and what the intervals are called
follow the rule of ``analysis.intervals``, as for the power law. Points are put in a canonical order first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from analysis.intervals import Basis, fit_basis, interval, resample
from analysis.load import ReportError
from analysis.powerlaw import B_MAX, LOG_A_MAX, PowerLawFit
from analysis.robust import HUBER_SCALE, Model, cost, lm, point_order, polish

TRANSFER_PARAMS = ("k", "alpha", "beta")
JOINT_PARAMS = ("E", "A", "a", "B", "b")
JOINT_MIN_SIZES = 3  # distinct P (and N) a joint fit needs: E + A P^-a is not identified by two sizes
_E_MARGIN = 1e-6  # E stays strictly below min(err)
_EXP_STARTS = (0.1, 0.3, 0.6, 1.0)
_E_STARTS = (0.0, 0.5, 0.9)  # fractions of min(err)
LINEAR_BOUND = np.array([100.0, 10.0, 10.0])  # |log k|, |alpha|, |beta|: far beyond any sensible law, finite exp
_NEGLIGIBLE = 1e-3  # a joint-law term below this share of the error at every point is not identified


@dataclass(frozen=True, eq=False)
class LawFit:
    """A fitted law: its parameters' point estimates and bootstrap intervals, and its fit in log space.

    ``values``/``lo``/``hi`` follow ``params``; a parameter the data cannot identify (beta with a single model
    size) is nan. ``basis`` says what the intervals rest on (``analysis.intervals``). ``boot`` holds the bootstrap
    fits (n_boot, len(params)), ``sigma`` each resample's log-space noise scale; a resample that lost the spread the
    law needs (a single D_F, a single size) is a row of nan and is left out of the intervals.
    """

    params: tuple[str, ...]
    values: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    r2: float
    rmse: float
    n_points: int
    converged: bool
    message: str
    basis: Basis
    boot: np.ndarray = field(repr=False)
    sigma: np.ndarray = field(repr=False)

    def __getitem__(self, name: str) -> float:
        return float(self.values[self.params.index(name)])

    def ci(self, name: str) -> tuple[float, float]:
        """The bootstrap interval of parameter ``name`` (``basis`` says what it is)."""
        i = self.params.index(name)
        return float(self.lo[i]), float(self.hi[i])


def effective_data(scratch: PowerLawFit, err: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """D_E: the samples the scratch curve needs to reach each error ``err`` (n,), from its fit and from each of its
    bootstrap fits (n_boot, n); nan where a curve never reaches the error (err at or below its floor c)."""
    t = np.asarray(err, dtype=float)
    a, b, c = (scratch.boot[:, i : i + 1] for i in range(3))
    reachable = (t[None, :] > c) & (b > 0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        boot = np.where(reachable, ((t[None, :] - c) / a) ** (-1.0 / np.where(b > 0, b, 1.0)), np.nan)
    return scratch.n_for(t), boot


def fit_transfer(
    d_f: np.ndarray, p: np.ndarray, d_t: np.ndarray, *, d_t_boot: np.ndarray | None = None, n_boot: int = 1000,
    seed: int = 0, groups: np.ndarray | None = None, huber_scale: float = HUBER_SCALE,
) -> LawFit:  # fmt: skip
    """Fit D_T = k D_F^alpha P^beta to the points with a finite D_T > 0 (others are left out).

    beta is fitted when the used points span two or more sizes P, else it is nan. ``d_t_boot`` (n_boot, n) gives
    each bootstrap resample its own D_T (e.g. read from the scratch curve's bootstrap fits; a point whose D_T is not
    finite and positive there drops out of that resample); without it every resample reuses ``d_t``. ``groups``
    (e.g. seeds) decide how the runs are resampled (``analysis.intervals``).
    """
    d_f, p, d_t = (np.asarray(v, dtype=float).ravel() for v in (d_f, p, d_t))
    order = point_order([d_f, p, d_t], groups)
    d_f, p, d_t, groups = d_f[order], p[order], d_t[order], None if groups is None else np.asarray(groups)[order]
    d_t_boot = None if d_t_boot is None else np.asarray(d_t_boot, dtype=float)[:, order]
    ok = np.isfinite(d_t) & (d_t > 0)
    if len(np.unique(d_f[ok])) < 2:
        raise ReportError(f"the D_T law needs positive D_T at >= 2 distinct D_F, but got {len(np.unique(d_f[ok]))}")
    fit_beta = len(np.unique(p[ok])) > 1
    k = 3 if fit_beta else 2
    if ok.sum() <= k:
        raise ReportError(f"the D_T law needs more than {k} points with positive D_T, but got {int(ok.sum())}")
    cols = np.column_stack([np.ones_like(d_f), np.log(d_f), np.log(p)][:k])
    designs, inv = np.unique(cols, axis=0, return_inverse=True)
    model = _linear_model(designs)
    y = np.log(np.where(ok, d_t, 1.0))
    start = np.linalg.lstsq(cols[ok], y[ok], rcond=None)[0]
    bound = LINEAR_BOUND[:k]
    est, converged, message = polish(lambda q: cols[ok] @ q - y[ok], start, -bound, bound, huber_scale)
    r = cols[ok] @ est - y[ok]
    basis = fit_basis(int(ok.sum()), k, len(np.unique(cols[ok], axis=0)), None if groups is None else groups[ok],
                      what="(D_F, P)" if fit_beta else "D_F")  # fmt: skip
    draws = resample(model, inv, y, est, basis, n_boot, seed, groups, used=ok)
    boot = np.empty((0, k))
    if len(draws.y):
        rows = len(draws.y)
        boot_dt = np.broadcast_to(d_t, (rows, len(d_t))) if d_t_boot is None else d_t_boot[:rows]
        valid = np.isfinite(boot_dt) & (boot_dt > 0)
        w = draws.w * valid
        # the scratch curve's own uncertainty: each resample reads D_T from one of its bootstrap fits
        y_boot = draws.y + np.where(valid & ok, np.log(np.where(valid, boot_dt, 1.0)) - y, 0.0)
        boot = lm(model, inv, y_boot, w, np.repeat(est[None, :], rows, 0), -np.tile(bound, (rows, 1)),
                  np.tile(bound, (rows, 1)), huber_scale)  # fmt: skip
        boot[~_spans(w, [d_f] + ([p] if fit_beta else []))] = np.nan
    values, boot = est.copy(), boot.copy()
    values[0], boot[:, 0] = np.exp(values[0]), np.exp(boot[:, 0])  # log k -> k
    if not fit_beta:
        values, boot = np.append(values, np.nan), np.column_stack([boot, np.full(len(boot), np.nan)])
    return _law(TRANSFER_PARAMS, values, boot, y[ok], r, converged, message, basis, draws.sigma)


def fit_joint(
    p: np.ndarray, n: np.ndarray, err: np.ndarray, *, n_boot: int = 1000, seed: int = 0,
    groups: np.ndarray | None = None, huber_scale: float = HUBER_SCALE,
) -> LawFit:  # fmt: skip
    """Fit err(P, N) = E + A P^-a + B N^-b with A, B > 0, 0 <= a, b <= 5 and 0 <= E < min(err).

    Needs JOINT_MIN_SIZES distinct sizes P and as many distinct N. Started from a grid over (a, b, E) (A and B by
    least squares at each), the best start polished by scipy; ``groups`` (e.g. seeds) decide how the runs are
    resampled (``analysis.intervals``).
    """
    p, n, err = (np.asarray(v, dtype=float).ravel() for v in (p, n, err))
    order = point_order([p, n, err], groups)
    p, n, err, groups = p[order], n[order], err[order], None if groups is None else np.asarray(groups)[order]
    if not (np.all(np.isfinite(err)) and np.all(err > 0) and np.all(p > 0) and np.all(n > 0)):
        raise ReportError("the joint law needs P > 0, N > 0 and finite errors > 0")
    sizes, counts = len(np.unique(p)), len(np.unique(n))
    if min(sizes, counts) < JOINT_MIN_SIZES:
        raise ReportError(f"the joint law needs >= {JOINT_MIN_SIZES} distinct model sizes and N, but got {sizes} "
                          f"sizes and {counts} N")  # fmt: skip
    x = np.column_stack([np.log(p), np.log(n)])
    designs, inv = np.unique(x, axis=0, return_inverse=True)
    model, y = joint_model(designs), np.log(err)
    e_hi = float(err.min()) * (1 - _E_MARGIN)
    starts = _joint_starts(x, err, e_hi)
    lo, hi = _joint_bounds(len(starts), np.full(len(starts), e_hi))
    ones = np.ones((len(starts), len(y)))
    grid = lm(model, inv, y, ones, starts, lo, hi, huber_scale)
    best = grid[np.argmin(cost(model, grid, inv, y, ones, huber_scale))]
    point = joint_model(x)
    est, converged, message = polish(lambda q: point(q[None, :], False)[0][0] - y, best, lo[0], hi[0], huber_scale)
    r = point(est[None, :], False)[0][0] - y
    message = "; ".join([message, *_joint_notes(est, x)])
    basis = fit_basis(len(y), len(JOINT_PARAMS), len(designs), groups, what="(P, N)")
    draws = resample(model, inv, y, est, basis, n_boot, seed, groups)
    boot = np.empty((0, 5))
    if len(draws.y):
        rows = len(draws.y)
        e_hi_boot = np.where(draws.w > 0, np.exp(draws.y), np.inf).min(1) * (1 - _E_MARGIN)
        blo, bhi = _joint_bounds(rows, e_hi_boot)
        boot = lm(model, inv, draws.y, draws.w, np.repeat(est[None, :], rows, 0), blo, bhi, huber_scale)
        boot[~_spans(draws.w, [p, n], JOINT_MIN_SIZES)] = np.nan
    return _law(JOINT_PARAMS, joint_values(est[None, :])[0], joint_values(boot), y, r, converged, message, basis,
                draws.sigma)


def _law(params: tuple[str, ...], values: np.ndarray, boot: np.ndarray, y: np.ndarray, r: np.ndarray,
         converged: bool, message: str, basis: Basis, sigma: np.ndarray) -> LawFit:  # fmt: skip
    cis = np.array([interval(boot[:, i], basis) for i in range(len(params))]).reshape(len(params), 2)
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1 - float((r**2).sum()) / ss_tot if ss_tot > 0 else float("nan")
    return LawFit(params, values, cis[:, 0], cis[:, 1], r2, float(np.sqrt((r**2).mean())), len(y), converged,
                  message, basis, boot, sigma)  # fmt: skip


def _spans(w: np.ndarray, axes: list[np.ndarray], need: int = 2) -> np.ndarray:
    """Per resample: whether the points it kept (weight > 0) span ``need`` distinct values on every axis."""
    keep = np.ones(len(w), dtype=bool)
    for values in axes:
        order = np.argsort(values, kind="stable")
        ordered = np.asarray(values)[order]
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        keep &= (np.add.reduceat(w[:, order] > 0, starts, axis=1) > 0).sum(1) >= need
    return keep


def _linear_model(designs: np.ndarray) -> Model:
    """log D_T = log k + alpha log D_F [+ beta log P]: the design rows hold (1, log D_F[, log P])."""

    def model(q: np.ndarray, jac: bool) -> tuple[np.ndarray, np.ndarray | None]:
        return q @ designs.T, np.broadcast_to(designs, (len(q), *designs.shape)) if jac else None

    return model


def joint_model(designs: np.ndarray) -> Model:
    """log(A P^-a + B N^-b + E) for parameter rows (log A, a, log B, b, E) at design rows (log P, log N)."""
    lp, ln = designs[:, 0], designs[:, 1]

    def model(q: np.ndarray, jac: bool) -> tuple[np.ndarray, np.ndarray | None]:
        qa, qb = np.exp(q[:, :1] - q[:, 1:2] * lp), np.exp(q[:, 2:3] - q[:, 3:4] * ln)
        m = qa + qb + q[:, 4:5]
        if not jac:
            return np.log(m), None
        ja, jb = qa / m, qb / m
        return np.log(m), np.stack([ja, -lp * ja, jb, -ln * jb, 1.0 / m], axis=-1)

    return model


def _joint_bounds(rows: int, e_hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lo = np.tile([-LOG_A_MAX, 0.0, -LOG_A_MAX, 0.0, 0.0], (rows, 1))
    hi = np.tile([LOG_A_MAX, B_MAX, LOG_A_MAX, B_MAX, 0.0], (rows, 1))
    hi[:, 4] = e_hi
    return lo, hi


def _joint_starts(x: np.ndarray, err: np.ndarray, e_hi: float) -> np.ndarray:
    """A grid of (log A, a, log B, b, E) starts: for each (a, b, E), A and B by least squares on err - E."""
    rows = []
    for a in _EXP_STARTS:
        for b in _EXP_STARTS:
            for frac in _E_STARTS:
                e = frac * e_hi
                basis = np.column_stack([np.exp(-a * x[:, 0]), np.exp(-b * x[:, 1])])
                coef = np.linalg.lstsq(basis, err - e, rcond=None)[0]
                coef = np.maximum(coef, 1e-3 * float(np.mean(err - e)) / basis.mean(0))
                rows.append((np.log(coef[0]), a, np.log(coef[1]), b, e))
    return np.array(rows)


def _joint_notes(q: np.ndarray, x: np.ndarray) -> list[str]:
    """What the data leave unidentified at the point estimate: a negligible term, an exponent at its bound."""
    qa, qb = np.exp(q[0] - q[1] * x[:, 0]), np.exp(q[2] - q[3] * x[:, 1])
    m = qa + qb + q[4]
    notes = [f"{term} below {_NEGLIGIBLE:g} of the error at every point: {names} not identified"
             for term, share, names in (("A P^-a", qa / m, "A and a"), ("B N^-b", qb / m, "B and b"))
             if share.max() < _NEGLIGIBLE]  # fmt: skip
    notes += [f"{name} at its upper bound {B_MAX}" for name, v in (("a", q[1]), ("b", q[3])) if v >= B_MAX * (1 - 1e-3)]
    return notes


def joint_values(q: np.ndarray) -> np.ndarray:
    """Internal rows (log A, a, log B, b, E) -> (E, A, a, B, b)."""
    return np.column_stack([q[:, 4], np.exp(q[:, 0]), q[:, 1], np.exp(q[:, 2]), q[:, 3]])
