"""Power-law fits err = a * n^-b + c with a robust loss in log space and bootstrap confidence intervals.

The point estimate is a Huber fit (``scipy.optimize.least_squares``, ``loss="huber"``) of the log residuals
``log(model) - log(err)``, started from a grid over b and c (the best start is polished by scipy, whose status
gives the convergence flag). The bootstrap refits every resample at once with a vectorised, bounded
Levenberg-Marquardt on the same Huber loss (iteratively reweighted), warm-started at the point estimate:
a resample is a vector of integer weights over the points (or over the groups, e.g. seeds).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import least_squares

from analysis.load import ReportError

B_MAX = 5.0
HUBER_SCALE = 0.1  # log-space residual (about 10 % relative error) beyond which the loss becomes linear
_B_STARTS = (0.1, 0.3, 0.6, 1.0, 2.0)
_C_STARTS = (0.0, 0.5, 0.9)  # fractions of min(err)
_C_MARGIN = 1e-6  # c stays strictly below min(err)


@dataclass(frozen=True, eq=False)
class PowerLawFit:
    """A fitted curve err = a * n^-b + c, its 95 % bootstrap intervals and its goodness of fit (log space)."""

    a: float
    b: float
    c: float
    a_ci: tuple[float, float]
    b_ci: tuple[float, float]
    c_ci: tuple[float, float]
    r2: float
    rmse: float
    n_points: int
    offset: bool
    converged: bool
    message: str
    boot: np.ndarray = field(repr=False)  # (n_boot, 3): the bootstrap fits' (a, b, c)

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

    def band(self, n: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Pointwise ``level`` band of the bootstrap fits' predictions at ``n`` (nan without bootstrap)."""
        n = np.asarray(n, dtype=float)
        if len(self.boot) == 0:
            return np.full_like(n, np.nan), np.full_like(n, np.nan)
        a, b, c = self.boot[:, :1], self.boot[:, 1:2], self.boot[:, 2:]
        pred = a * n[None, :] ** -b + c
        q = 50 * (1 - level)
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

    ``groups`` (one label per point, e.g. the seed) makes the bootstrap resample whole groups when it has more
    than one distinct value; otherwise points are resampled. Intervals are bootstrap percentiles (95 %).
    """
    x, y = _validate(n, err, offset)
    c_hi = float(np.exp(y.min())) * (1 - _C_MARGIN) if offset else 0.0
    starts = _starts(x, y, c_hi, offset)
    ones = np.ones((len(starts), len(x)))
    p_grid = _lm(x, y, ones, starts, np.full(len(starts), c_hi), offset, huber_scale)
    best = p_grid[np.argmin(_cost(p_grid, x, y, ones, huber_scale))]
    p, converged, message = _polish(x, y, best, c_hi, offset, huber_scale)

    r = _model_log(p[None, :], x)[0] - y
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1 - float((r**2).sum()) / ss_tot if ss_tot > 0 else float("nan")
    boot = _bootstrap(x, y, p, offset, n_boot, seed, groups, huber_scale)
    cis = [_ci(boot[:, k]) for k in range(3)]
    return PowerLawFit(
        a=float(np.exp(p[0])), b=float(p[1]), c=float(p[2]),
        a_ci=cis[0], b_ci=cis[1], c_ci=cis[2],
        r2=r2, rmse=float(np.sqrt((r**2).mean())), n_points=len(x), offset=offset,
        converged=converged, message=message, boot=boot,
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
    return _interp_n_for(n_s, err_s, t) / _interp_n_for(n_f, err_f, t)


def _interp_n_for(n: np.ndarray, err: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Log-log interpolated sample count at which the mean-error curve first reaches each target."""
    n_u, inverse = np.unique(np.asarray(n, dtype=float), return_inverse=True)
    mean = np.bincount(inverse, weights=np.asarray(err, dtype=float)) / np.bincount(inverse)
    out = np.full(t.shape, np.nan)
    if len(n_u) < 2:
        return out
    ln, le, lt = np.log(n_u), np.log(mean), np.log(t)[..., None]
    crosses = (le[:-1] >= lt) & (le[1:] <= lt) & (le[0] >= lt)
    has = crosses.any(-1)
    i = np.argmax(crosses, -1)
    span = le[i] - le[i + 1]
    frac = np.divide(le[i] - lt[..., 0], span, out=np.zeros_like(span), where=span > 0)
    out[has] = np.exp((ln[i] + frac * (ln[i + 1] - ln[i]))[has])
    return out


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


def _starts(x: np.ndarray, y: np.ndarray, c_hi: float, offset: bool) -> np.ndarray:
    """Grid of (log a, b, c) starts: for each (b, c) the log a that matches the data on average."""
    c_grid = [f * c_hi for f in _C_STARTS] if offset else [0.0]
    rows = [(np.mean(np.log(np.exp(y) - c) + b * x), b, c) for b in _B_STARTS for c in c_grid]
    return np.array(rows)


def _model_log(p: np.ndarray, x: np.ndarray) -> np.ndarray:
    """log(a n^-b + c) for a batch of parameters p = (log a, b, c), shape (B, 3) -> (B, n)."""
    return np.log(np.exp(p[:, :1] - p[:, 1:2] * x) + p[:, 2:3])


def _cost(p: np.ndarray, x: np.ndarray, y: np.ndarray, w: np.ndarray, s: float) -> np.ndarray:
    """Weighted Huber cost per parameter row (scipy's convention: 0.5 r^2 inside, s|r| - s^2/2 outside)."""
    xu, inv = np.unique(x, return_inverse=True)
    return _huber(_model_log(p, xu)[:, inv] - y, w, s)


def _huber(r: np.ndarray, w: np.ndarray, s: float) -> np.ndarray:
    a = np.abs(r)
    return (w * np.where(a <= s, 0.5 * a * a, s * (a - 0.5 * s))).sum(-1)


def _project(p: np.ndarray, c_hi: np.ndarray) -> np.ndarray:
    return np.stack(
        [np.clip(p[:, 0], -50, 50), np.clip(p[:, 1], 0, B_MAX), np.clip(p[:, 2], 0, c_hi)], axis=1
    )


def _lm(
    x: np.ndarray, y: np.ndarray, w: np.ndarray, p0: np.ndarray, c_hi: np.ndarray, offset: bool, s: float,
    max_iter: int = 200, tol: float = 1e-8,
) -> np.ndarray:  # fmt: skip
    """Bounded Levenberg-Marquardt on the weighted Huber cost for a batch of independent problems.

    Rows are retired once a step no longer lowers their cost by more than ``tol`` (relative) or their damping
    explodes, so the work shrinks as the batch converges.
    """
    p = _project(p0.copy(), c_hi)
    lam = np.full(len(p), 1e-3)
    cost = _cost(p, x, y, w, s)
    active = np.arange(len(p))
    # the model depends on n only: evaluate it at the distinct n (xu) and sum the point terms per n with
    # reduceat over n-sorted points (no BLAS: its threads only slow these small products down)
    order = np.argsort(x, kind="stable")
    x, y, w = x[order], y[order], w[:, order]
    xu, starts, inv = np.unique(x, return_index=True, return_inverse=True)
    xu2 = xu * xu
    for _ in range(max_iter):
        if active.size == 0:
            break
        pa, wa = p[active], w[active]
        q = np.exp(pa[:, :1] - pa[:, 1:2] * xu)
        m = q + pa[:, 2:3]
        r = np.log(m)[:, inv] - y
        hw = wa * np.minimum(1.0, s / np.maximum(np.abs(r), 1e-300))  # IRLS weights of the Huber loss
        h, hr = np.add.reduceat(hw, starts, axis=1), np.add.reduceat(hw * r, starts, axis=1)
        # Jacobian columns: d r / d(log a) = q/m, d r / d b = -x q/m, d r / d c = 1/m
        j0, j2 = q / m, 1.0 / m
        v, ur = h * j0 * j0, hr * j0
        hess = np.zeros((len(active), 3, 3))
        hess[:, 0, 0], hess[:, 0, 1], hess[:, 1, 1] = v.sum(1), -(v * xu).sum(1), (v * xu2).sum(1)
        grad = np.zeros((len(active), 3))
        grad[:, 0], grad[:, 1] = ur.sum(1), -(ur * xu).sum(1)
        if offset:
            t = h * j0 * j2
            hess[:, 0, 2], hess[:, 1, 2], hess[:, 2, 2] = t.sum(1), -(t * xu).sum(1), (h * j2 * j2).sum(1)
            grad[:, 2] = (hr * j2).sum(1)
        else:
            hess[:, 2, 2] = 1.0
        hess[:, 1, 0], hess[:, 2, 0], hess[:, 2, 1] = hess[:, 0, 1], hess[:, 0, 2], hess[:, 1, 2]
        diag = np.einsum("bii->bi", hess) + 1e-12
        # a resample that kept a single N leaves (a, b) unidentifiable: the absolute ridge keeps it solvable
        damped = hess + (lam[active, None, None] * diag[:, :, None] + 1e-10) * np.eye(3)
        step = np.linalg.solve(damped, -grad[..., None])[..., 0]
        p_new = _project(pa + step, c_hi[active])
        cost_new = _huber(_model_log(p_new, xu)[:, inv] - y, wa, s)
        better = cost_new < cost[active]
        gain = (cost[active] - cost_new) / np.maximum(cost[active], 1e-300)
        p[active[better]], cost[active[better]] = p_new[better], cost_new[better]
        lam[active] = np.where(better, lam[active] * 0.3, lam[active] * 10)
        done = (better & (gain < tol)) | (lam[active] > 1e12) | (np.abs(step).max(1) < 1e-12)
        active = active[~done]
    return p


def _polish(
    x: np.ndarray, y: np.ndarray, p: np.ndarray, c_hi: float, offset: bool, s: float
) -> tuple[np.ndarray, bool, str]:
    """Refine the best start with scipy (trust region reflective, Huber); its status is the convergence flag."""
    k = 3 if offset else 2
    lo, hi = np.array([-50.0, 0.0, 0.0])[:k], np.array([50.0, B_MAX, max(c_hi, 1e-300)])[:k]
    x0 = np.clip(p[:k], lo + 1e-9 * (hi - lo), hi - 1e-9 * (hi - lo))

    def resid(q: np.ndarray) -> np.ndarray:
        return _model_log(np.append(q, 0.0)[None, :3], x)[0] - y

    res = least_squares(resid, x0, bounds=(lo, hi), loss="huber", f_scale=s, method="trf", x_scale="jac")
    out = np.append(res.x, 0.0)[:3]
    notes = [res.message]
    if out[1] >= B_MAX * (1 - 1e-6):
        notes.append(f"b at its upper bound {B_MAX}")
    if offset and out[2] >= c_hi * (1 - 1e-4):
        notes.append("c at its upper bound min(err)")
    return out, bool(res.status > 0 and np.isfinite(res.cost)), "; ".join(notes)


def _bootstrap(
    x: np.ndarray, y: np.ndarray, p: np.ndarray, offset: bool, n_boot: int, seed: int,
    groups: np.ndarray | None, s: float,
) -> np.ndarray:  # fmt: skip
    """Refit ``n_boot`` resamples (points, or whole groups) warm-started at ``p``; rows of (a, b, c)."""
    if n_boot <= 0:
        return np.empty((0, 3))
    rng = np.random.default_rng(seed)
    codes = np.arange(len(x))
    if groups is not None:
        labels, g_codes = np.unique(np.asarray(groups).astype(str), return_inverse=True)
        if len(labels) > 1:
            codes = g_codes
    k = codes.max() + 1
    draws = rng.integers(0, k, size=(n_boot, k))
    counts = np.bincount((draws + k * np.arange(n_boot)[:, None]).ravel(), minlength=n_boot * k)
    w = counts.reshape(n_boot, k)[:, codes].astype(float)
    err = np.exp(y)
    c_hi = np.where(w > 0, err, np.inf).min(1) * (1 - _C_MARGIN) if offset else np.zeros(n_boot)
    fits = _lm(x, y, w, np.repeat(p[None, :], n_boot, axis=0), c_hi, offset, s)
    return np.column_stack([np.exp(fits[:, 0]), fits[:, 1], fits[:, 2]])


def _ci(samples: np.ndarray) -> tuple[float, float]:
    if len(samples) == 0:
        return float("nan"), float("nan")
    lo, hi = np.nanpercentile(samples, [2.5, 97.5])
    return float(lo), float(hi)
