"""Power-law fits err = a * n^-b + c with a robust loss in log space and bootstrap intervals.

The point estimate is a Huber fit of the log residuals ``log(model) - log(err)`` whose ties least squares breaks
(``analysis.robust``: a curve's answer depends on its points alone, not on the optimiser's path), started from a grid
over b and c (the best start is polished by scipy, whose status gives the convergence flag). The bootstrap refits
every resample at once with the batched, bounded Levenberg-Marquardt of ``analysis.robust`` on the same loss,
warm-started at the point estimate; how the runs are resampled, and what the interval is called, follows the rule of
``analysis.intervals`` (a residual bootstrap within the design with a t correction; whole seeds from 10 seeds on).
Points are put in a canonical order first, so the input's order changes nothing, intervals included.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from analysis.intervals import Basis, fit_basis, interval, resample
from analysis.load import ReportError
from analysis.robust import HUBER_SCALE, Model, cost, lm, point_order, polish

B_MAX = 5.0
LOG_A_MAX = 50.0  # |log a| bound: keeps exp() finite
_B_STARTS = (0.1, 0.3, 0.6, 1.0, 2.0)
_C_STARTS = (0.0, 0.5, 0.9)  # fractions of min(err)
_C_MARGIN = 1e-6  # c stays strictly below min(err)


@dataclass(frozen=True, eq=False)
class PowerLawFit:
    """A fitted curve err = a * n^-b + c, its bootstrap intervals and its goodness of fit (log space).

    ``basis`` says what the intervals rest on and whether they are 95 % ones (``analysis.intervals``); ``n_distinct``
    is the number of distinct n; ``boot`` holds the bootstrap fits' (a, b, c) and ``sigma`` the log-space noise
    scale each resample was drawn with.
    """

    a: float
    b: float
    c: float
    a_ci: tuple[float, float]
    b_ci: tuple[float, float]
    c_ci: tuple[float, float]
    r2: float
    rmse: float
    n_points: int
    n_distinct: int
    offset: bool
    converged: bool
    message: str
    basis: Basis
    boot: np.ndarray = field(repr=False)  # (n_boot, 3): the bootstrap fits' (a, b, c)
    sigma: np.ndarray = field(repr=False)  # (n_boot,): the noise scale (log space) of each resample

    def predict(self, n: np.ndarray | float) -> np.ndarray:
        """The fitted error at sample counts ``n``."""
        return self.a * np.asarray(n, dtype=float) ** -self.b + self.c

    def n_for(self, err_target: np.ndarray | float) -> np.ndarray:
        """The sample count at which the fitted curve reaches ``err_target``; nan where it never does."""
        t = np.asarray(err_target, dtype=float)
        reachable = (t > self.c) & (self.b > 0)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # a flat curve needs n = inf
            n = ((t - self.c) / self.a) ** (-1.0 / self.b) if self.b > 0 else np.full_like(t, np.nan)
        return np.where(reachable, n, np.nan)

    def band(self, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pointwise band of the bootstrap fits' predictions at ``n``, read as the intervals are (nan without them)."""
        n = np.asarray(n, dtype=float)
        if len(self.boot) == 0:
            return np.full_like(n, np.nan), np.full_like(n, np.nan)
        a, b, c = self.boot[:, :1], self.boot[:, 1:2], self.boot[:, 2:]
        pred = a * n[None, :] ** -b + c
        q = 50 * (1 - self.basis.level)
        pct = np.nanpercentile if np.isnan(pred).any() else np.percentile  # nanpercentile loops per column
        lo, hi = pct(pred, [q, 100 - q], axis=0)
        return lo, hi


def fit(
    n: np.ndarray,
    err: np.ndarray,
    *,
    offset: bool = True,
    n_boot: int = 1000,
    seed: int = 0,
    groups: np.ndarray | None = None,
    huber_scale: float = HUBER_SCALE,
) -> PowerLawFit:
    """Fit err = a * n^-b + c (c = 0 when ``offset`` is False) with a > 0, 0 <= b <= 5, 0 <= c < min(err).

    ``groups`` (one label per point, e.g. the seed) decides how the bootstrap resamples (``analysis.intervals``:
    residuals within the design; whole groups from 10 distinct ones on); ``fit.basis`` says what the intervals are.
    """
    x, y = _validate(n, err, offset)
    order = point_order([x, y], groups)
    x, y, groups = x[order], y[order], None if groups is None else np.asarray(groups)[order]
    xu, inv = np.unique(x, return_inverse=True)
    model = power_law_model(xu, offset)
    c_hi = float(np.exp(y.min())) * (1 - _C_MARGIN) if offset else 0.0
    starts = _starts(x, y, c_hi, offset)
    lo, hi = _bounds(len(starts), np.full(len(starts), c_hi), offset)
    ones = np.ones((len(starts), len(x)))
    p_grid = lm(model, inv, y, ones, starts, lo, hi, huber_scale)
    best = p_grid[np.argmin(cost(model, p_grid, inv, y, ones, huber_scale))]
    p, converged, message = _polish(x, y, best, c_hi, offset, huber_scale)

    r = power_law_model(x, offset)(p[None, : 3 if offset else 2], False)[0][0] - y
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1 - float((r**2).sum()) / ss_tot if ss_tot > 0 else float("nan")
    basis = fit_basis(len(x), 3 if offset else 2, len(xu), groups)
    boot, sigma = _bootstrap(model, inv, y, p, offset, basis, n_boot, seed, groups, huber_scale)
    cis = [interval(boot[:, k], basis) for k in range(3)]
    return PowerLawFit(
        a=float(np.exp(p[0])), b=float(p[1]), c=float(p[2]),
        a_ci=cis[0], b_ci=cis[1], c_ci=cis[2],
        r2=r2, rmse=float(np.sqrt((r**2).mean())), n_points=len(x), n_distinct=len(xu), offset=offset,
        converged=converged, message=message, basis=basis, boot=boot, sigma=sigma,
    )  # fmt: skip


def efficiency_multiplier(
    fit_scratch: PowerLawFit, fit_finetune: PowerLawFit, targets: np.ndarray
) -> np.ndarray:
    """n_scratch(target) / n_finetune(target) from the fitted curves; nan where either never reaches it."""
    return fit_scratch.n_for(targets) / fit_finetune.n_for(targets)


def efficiency_multiplier_interp(
    n_s: np.ndarray, err_s: np.ndarray, n_f: np.ndarray, err_f: np.ndarray, targets: np.ndarray
) -> np.ndarray:
    """The same ratio from log-log interpolation of the mean error per distinct n, without extrapolation.

    A curve reaches a target at its first downward crossing; targets above the error at its smallest n or
    below every error it reaches are nan.
    """
    t = np.asarray(targets, dtype=float)
    return interp_n_for(*curve_means(n_s, err_s), t) / interp_n_for(*curve_means(n_f, err_f), t)


def interp_n_for(n_u: np.ndarray, means: np.ndarray, t: np.ndarray | float) -> np.ndarray:
    """Log-log interpolated n at which a mean-error curve first reaches each target, without extrapolation.

    ``means`` (..., m) are the mean errors at the sorted distinct ``n_u`` (m,); leading axes (e.g. bootstrap
    resamples) broadcast against ``t``. A curve reaches a target at its first downward crossing; targets above its
    error at the smallest n, or below every error it reaches, give nan.
    """
    means = np.asarray(means, dtype=float)
    shape = np.broadcast_shapes(np.shape(t), means.shape[:-1])
    m = means.shape[-1]
    if m < 2:
        return np.full(shape, np.nan)
    ln = np.log(np.asarray(n_u, dtype=float))
    le = np.broadcast_to(np.log(means), (*shape, m))
    lt = np.broadcast_to(np.log(np.asarray(t, dtype=float)), shape)[..., None]
    crosses = (le[..., :-1] >= lt) & (le[..., 1:] <= lt) & (le[..., :1] >= lt)
    i = np.argmax(crosses, -1)
    l0 = np.take_along_axis(le, i[..., None], -1)[..., 0]
    l1 = np.take_along_axis(le, i[..., None] + 1, -1)[..., 0]
    span = l0 - l1
    frac = np.divide(l0 - lt[..., 0], span, out=np.zeros_like(span), where=span > 0)
    frac = np.clip(frac, 0.0, 1.0)  # already so where the curve crosses; elsewhere (dropped below) kept finite
    return np.where(crosses.any(-1), np.exp(ln[i] + frac * (ln[i + 1] - ln[i])), np.nan)


def curve_means(n: np.ndarray, err: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sorted distinct n and the mean error at each."""
    n_u, inverse = np.unique(np.asarray(n, dtype=float), return_inverse=True)
    return n_u, np.bincount(inverse, weights=np.asarray(err, dtype=float)) / np.bincount(inverse)


def _validate(n: np.ndarray, err: np.ndarray, offset: bool) -> tuple[np.ndarray, np.ndarray]:
    n, err = np.asarray(n, dtype=float).ravel(), np.asarray(err, dtype=float).ravel()
    if n.shape != err.shape:
        raise ReportError(f"fit needs one error per n, but got {n.size} n and {err.size} errors")
    if not (np.all(np.isfinite(n)) and np.all(np.isfinite(err)) and np.all(n > 0) and np.all(err > 0)):
        raise ReportError("fit needs finite n > 0 and errors > 0; drop failed or diverged runs first")
    need = 3 if offset else 2
    if len(np.unique(n)) < need:
        raise ReportError(
            f"fitting {'a*n^-b+c' if offset else 'a*n^-b'} needs >= {need} distinct n, but got "
            f"{len(np.unique(n))}; use offset=False or more sample counts"
        )
    return np.log(n), np.log(err)


def power_law_model(xu: np.ndarray, offset: bool) -> Model:
    """log(a n^-b + c) at the log sample counts ``xu`` for parameter rows (log a, b, c), or (log a, b) without
    offset, with its Jacobian: d/d(log a) = q/m, d/db = -x q/m, d/dc = 1/m (q = a n^-b, m = q + c)."""

    def model(p: np.ndarray, jac: bool) -> tuple[np.ndarray, np.ndarray | None]:
        q = np.exp(p[:, :1] - p[:, 1:2] * xu)
        m = q + p[:, 2:3] if offset else q
        if not jac:
            return np.log(m), None
        j0 = q / m
        cols = [j0, -xu * j0, 1.0 / m] if offset else [j0, -xu * j0]
        return np.log(m), np.stack(cols, axis=-1)

    return model


def _bounds(rows: int, c_hi: np.ndarray, offset: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per-row bounds on (log a, b[, c]): |log a| <= LOG_A_MAX, 0 <= b <= B_MAX, 0 <= c <= c_hi."""
    lo = np.tile([-LOG_A_MAX, 0.0, 0.0][: 3 if offset else 2], (rows, 1))
    hi = np.tile([LOG_A_MAX, B_MAX, 0.0][: 3 if offset else 2], (rows, 1))
    if offset:
        hi[:, 2] = c_hi
    return lo, hi


def _starts(x: np.ndarray, y: np.ndarray, c_hi: float, offset: bool) -> np.ndarray:
    """Grid of (log a, b[, c]) starts: for each (b, c) the log a that matches the data on average."""
    c_grid = [f * c_hi for f in _C_STARTS] if offset else [0.0]
    rows = [(np.mean(np.log(np.exp(y) - c) + b * x), b, c) for b in _B_STARTS for c in c_grid]
    return np.array(rows)[:, : 3 if offset else 2]


def _polish(
    x: np.ndarray, y: np.ndarray, p: np.ndarray, c_hi: float, offset: bool, s: float
) -> tuple[np.ndarray, bool, str]:
    """Refine the best start with scipy; the bounds it ends on are named in the message. Returns (log a, b, c)."""
    lo, hi = (b[0] for b in _bounds(1, np.array([c_hi]), offset))
    model = power_law_model(x, offset)
    out, converged, message = polish(lambda q: model(q[None, :], False)[0][0] - y, p, lo, hi, s)
    out = np.append(out, 0.0)[:3]
    notes = [message]
    if out[1] >= B_MAX * (1 - 1e-6):
        notes.append(f"b at its upper bound {B_MAX}")
    if offset and out[2] >= c_hi * (1 - 1e-4):
        notes.append("c at its upper bound min(err)")
    return out, converged, "; ".join(notes)


def _bootstrap(
    model: Model, inv: np.ndarray, y: np.ndarray, p: np.ndarray, offset: bool, basis: Basis, n_boot: int, seed: int,
    groups: np.ndarray | None, s: float,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Refit ``n_boot`` resamples (``analysis.intervals.resample``) warm-started at ``p``: rows of (a, b, c) and each
    resample's noise scale."""
    k = 3 if offset else 2
    draws = resample(model, inv, y, p[:k], basis, n_boot, seed, groups)
    rows = len(draws.y)
    if rows == 0:
        return np.empty((0, 3)), np.empty(0)
    c_hi = np.where(draws.w > 0, np.exp(draws.y), np.inf).min(1) * (1 - _C_MARGIN) if offset else np.zeros(rows)
    lo, hi = _bounds(rows, c_hi, offset)
    fits = lm(model, inv, draws.y, draws.w, np.repeat(p[None, :k], rows, axis=0), lo, hi, s)
    c = fits[:, 2] if offset else np.zeros(rows)
    return np.column_stack([np.exp(fits[:, 0]), fits[:, 1], c]), draws.sigma
