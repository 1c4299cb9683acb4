"""Robust fitting machinery shared by every law the analysis fits: a Huber loss on log-space residuals, a batched
bounded Levenberg-Marquardt, scipy's polish of a point estimate, bootstrap resample weights and percentile intervals.

A model is a function of a batch of parameter rows ``p`` (B, k) that returns the fitted values at the distinct design
points (B, m) and, when asked, their Jacobian (B, m, k). Points map to designs through ``inv`` (e.g. every seed at
one N shares a design), so a model is evaluated once per design, not once per point. The residual of point j is
``f[:, inv[j]] - y[j]`` (``y`` may differ per batch row), weighted by ``w`` (B, n): a bootstrap resample is a row
of integer weights.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np
from scipy.optimize import least_squares

HUBER_SCALE = 0.1  # log-space residual (about 10 % relative error) beyond which the loss becomes linear
LEVEL = 0.95  # every interval of the analysis: the central 95 % of the bootstrap fits

Model = Callable[[np.ndarray, bool], tuple[np.ndarray, np.ndarray | None]]  # (p, jac) -> (f (B, m), J (B, m, k))


def huber(r: np.ndarray, w: np.ndarray, s: float) -> np.ndarray:
    """Weighted Huber cost per row (scipy's convention: 0.5 r^2 inside ``s``, s|r| - s^2/2 outside)."""
    a = np.abs(r)
    m = np.minimum(a, s)
    return np.einsum("...n,...n->...", w, m * (a - 0.5 * m))  # m (a - m/2): a^2/2 inside, s a - s^2/2 outside


def cost(model: Model, p: np.ndarray, inv: np.ndarray, y: np.ndarray, w: np.ndarray, s: float) -> np.ndarray:
    """The weighted Huber cost of each parameter row of ``p``."""
    return huber(model(p, False)[0][:, inv] - y, w, s)


def lm(
    model: Model, inv: np.ndarray, y: np.ndarray, w: np.ndarray, p0: np.ndarray, lo: np.ndarray, hi: np.ndarray,
    s: float = HUBER_SCALE, max_iter: int = 200, tol: float = 1e-4,
) -> np.ndarray:  # fmt: skip
    """Bounded Levenberg-Marquardt on the weighted Huber cost, for a batch of independent problems (rows of ``p0``).

    The Huber loss is minimised by iteratively reweighted least squares; bounds ``lo``/``hi`` (B, k) are kept by
    projection. Rows are retired once a step no longer lowers their cost by more than ``tol`` (relative; 1e-4 leaves
    the parameters within about a percent of their standard error of the optimum, far below the bootstrap's own
    Monte Carlo error) or their damping explodes, so the work shrinks as the batch converges.
    """
    p = np.clip(p0.copy(), lo, hi)
    k = p.shape[1]
    # sum the point terms per design with reduceat over design-sorted points (no BLAS: its threads only slow
    # these small products down)
    order = np.argsort(inv, kind="stable")
    inv, y, w = inv[order], y[..., order], w[:, order]
    starts = np.flatnonzero(np.r_[True, inv[1:] != inv[:-1]])
    per_row = y.ndim == 2
    lam = np.full(len(p), 1e-3)
    loss = cost(model, p, inv, y, w, s)
    active = np.arange(len(p))
    for _ in range(max_iter):
        if active.size == 0:
            break
        pa, wa, ya = p[active], w[active], y[active] if per_row else y
        f, jac = model(pa, True)
        r = f[:, inv] - ya
        hw = wa * (s / np.maximum(np.abs(r), s))  # IRLS weights of the Huber loss: min(1, s / |r|)
        h = np.add.reduceat(hw, starts, axis=1)[:, :, None] * jac
        hess = np.einsum("bmi,bmj->bij", h, jac)
        grad = np.einsum("bm,bmi->bi", np.add.reduceat(hw * r, starts, axis=1), jac)
        # active set: a parameter on a bound that the gradient pushes outward stays there, and the step of the
        # others is solved without it (a projected full step would be rejected and slow the row to a crawl)
        free = ~(((pa <= lo[active]) & (grad > 0)) | ((pa >= hi[active]) & (grad < 0)))
        grad = grad * free
        hess = hess * (free[:, :, None] & free[:, None, :]) + (~free)[:, :, None] * np.eye(k)
        diag = np.einsum("bii->bi", hess) + 1e-12
        # a resample that kept too few designs leaves some parameters unidentifiable: the absolute ridge keeps the
        # system solvable (a parameter the model does not use has a zero Jacobian column and never moves)
        damped = hess + (lam[active, None, None] * diag[:, :, None] + 1e-10) * np.eye(k)
        step = np.linalg.solve(damped, -grad[..., None])[..., 0]
        p_new = np.clip(pa + step, lo[active], hi[active])
        loss_new = cost(model, p_new, inv, ya, wa, s)
        better = loss_new < loss[active]
        gain = (loss[active] - loss_new) / np.maximum(loss[active], 1e-300)
        p[active[better]], loss[active[better]] = p_new[better], loss_new[better]
        lam[active] = np.where(better, lam[active] * 0.3, lam[active] * 10)
        done = (better & (gain < tol)) | (lam[active] > 1e12) | (np.abs(step).max(1) < 1e-12)
        active = active[~done]
    return p


def polish(
    resid: Callable[[np.ndarray], np.ndarray], x0: np.ndarray, lo: np.ndarray, hi: np.ndarray, s: float = HUBER_SCALE
) -> tuple[np.ndarray, bool, str]:
    """Refine a point estimate with scipy (trust region reflective, Huber loss); its status is the convergence flag.

    Returns the parameters, whether scipy converged to a finite cost, and scipy's message.
    """
    hi = np.maximum(hi, lo + 1e-300)
    x0 = np.clip(x0, lo + 1e-9 * (hi - lo), hi - 1e-9 * (hi - lo))
    res = least_squares(resid, x0, bounds=(lo, hi), loss="huber", f_scale=s, method="trf", x_scale="jac")
    return res.x, bool(res.status > 0 and np.isfinite(res.cost)), res.message


def resample_weights(n_points: int, n_boot: int, seed: int, groups: np.ndarray | None = None) -> np.ndarray:
    """``n_boot`` bootstrap resamples as integer weights over the points, shape (n_boot, n_points).

    With ``groups`` (one label per point, e.g. the seed) holding more than one distinct value, whole groups are
    drawn with replacement and every point of a group gets its group's count; otherwise points are drawn.
    """
    if n_boot <= 0:
        return np.empty((0, n_points))
    rng = np.random.default_rng(seed)
    codes = np.arange(n_points)
    if groups is not None:
        labels, g_codes = np.unique(np.asarray(groups).astype(str), return_inverse=True)
        if len(labels) > 1:
            codes = g_codes
    k = codes.max() + 1
    draws = rng.integers(0, k, size=(n_boot, k))
    counts = np.bincount((draws + k * np.arange(n_boot)[:, None]).ravel(), minlength=n_boot * k)
    return counts.reshape(n_boot, k)[:, codes].astype(float)


def interval(samples: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """The central ``level`` percentile interval of the finite-or-infinite samples (nan ones ignored); nan if none."""
    samples = np.asarray(samples, dtype=float)
    samples = samples[~np.isnan(samples)]
    if len(samples) == 0:
        return float("nan"), float("nan")
    q = 50 * (1 - level)
    lo, hi = np.percentile(samples, [q, 100 - q], method="linear" if np.isfinite(samples).all() else "inverted_cdf")
    return float(lo), float(hi)


def seed_for(seed: int, label: tuple[str, ...]) -> int:
    """A bootstrap seed derived from ``seed`` and a fit's label, so a fit does not depend on which others exist."""
    return int(np.random.SeedSequence([seed, zlib.crc32("|".join(label).encode())]).generate_state(1)[0])
