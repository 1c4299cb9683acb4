"""Robust fitting machinery shared by every law the analysis fits: a Huber loss on log-space residuals with a
least-squares tie break, a batched bounded Levenberg-Marquardt and scipy's polish of a point estimate (how a fit is
resampled and its intervals read: ``analysis.intervals``).

A model is a function of a batch of parameter rows ``p`` (B, k) that returns the fitted values at the distinct design
points (B, m) and, when asked, their Jacobian (B, m, k). Points map to designs through ``inv`` (e.g. every seed at
one N shares a design), so a model is evaluated once per design, not once per point. The residual of point j is
``f[:, inv[j]] - y[j]`` (``y`` may differ per batch row), weighted by ``w`` (B, n): a bootstrap resample is a row
of integer weights.

Why the tie break: Huber's loss is linear beyond its scale. Where every point that a direction of the parameters
moves lies in that linear regime and their pulls cancel (four points at evenly spaced log N with residual signs
+ - - + do it), the cost is flat along that direction, and which of the optima a fit returns depends on where the
optimiser started and on the order of the points, not on the data (4-point curves of the reference study had
b = 0.61 and b = 0.81 at the same cost). The loss here is Huber's plus TIE_BREAK times least squares: strictly convex
in the residuals, so among fits of (nearly) equal Huber cost the one with the smallest squared residuals wins.
Elsewhere it moves a fit by about TIE_BREAK of its distance to the least-squares fit, and beyond the scale an
outlier pulls TIE_BREAK |r| / s harder (1 % at r = 1, a factor e off): the fit stays robust. Both minimisers use
this one loss: the batched Levenberg-Marquardt with the loss's own curvature (it walks along such a flat direction
to the tie break in a step or two) and scipy's polish through its callable loss.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np
from scipy.optimize import least_squares

HUBER_SCALE = 0.1  # log-space residual (about 10 % relative error) beyond which the loss becomes linear
TIE_BREAK = 1e-3  # share of least squares added to the Huber loss: breaks its ties (see the module docstring)
_CHUNK = 1 << 16  # (rows x points) elements evaluated at a time: the arrays stay in cache (2x faster than whole)

Model = Callable[[np.ndarray, bool], tuple[np.ndarray, np.ndarray | None]]  # (p, jac) -> (f (B, m), J (B, m, k))


def huber(r: np.ndarray, w: np.ndarray, s: float) -> np.ndarray:
    """Weighted cost per row: Huber (scipy's convention: r^2/2 inside ``s``, s|r| - s^2/2 outside) plus TIE_BREAK
    r^2/2."""
    return _cost(r, r - np.clip(r, -s, s), w)


def _cost(r: np.ndarray, beyond: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``huber`` from the residuals and their parts ``beyond`` the scale: ((1 + TIE_BREAK) r^2 - beyond^2) / 2."""
    return 0.5 * np.einsum("...n,...n->...", w, (1 + TIE_BREAK) * r * r - beyond * beyond)


def cost(model: Model, p: np.ndarray, inv: np.ndarray, y: np.ndarray, w: np.ndarray, s: float) -> np.ndarray:
    """The weighted cost (``huber``) of each parameter row of ``p``."""
    return huber(model(p, False)[0][:, inv] - y, w, s)


def lm(
    model: Model, inv: np.ndarray, y: np.ndarray, w: np.ndarray, p0: np.ndarray, lo: np.ndarray, hi: np.ndarray,
    s: float = HUBER_SCALE, max_iter: int = 200, tol: float = 1e-8,
) -> np.ndarray:  # fmt: skip
    """Bounded Levenberg-Marquardt on the weighted cost ``huber``, for a batch of independent problems (rows of
    ``p0``); the minimising rows, shape (B, k).

    Each step is a damped Newton step of the loss (the Hessian weighs a point by the loss's curvature: 1 inside
    ``s``, TIE_BREAK outside), so a row whose Huber cost is flat in some direction walks to the least-squares tie
    break in a step or two, where reweighted least squares would crawl. Bounds ``lo``/``hi`` (B, k) are kept by an
    active set. A row retires once a full Newton step would gain less than ``tol`` times its cost per unit of
    weight. Moving a parameter by one standard error changes the cost by about that unit, so 1e-8 leaves the
    parameters within about 1e-4 of their standard error of the optimum (and within about 1e-5 of the tie break along
    a flat direction, whose curvature is only TIE_BREAK's), far below the bootstrap's Monte Carlo error. Stopping on
    the cost's relative gain instead stopped rows early where the cost is shallow (a weakly identified joint law:
    intervals came out too narrow).
    """
    p = np.clip(p0.copy(), lo, hi)
    order = np.argsort(inv, kind="stable")  # points sorted by design: their terms are summed with reduceat
    inv, y, w = inv[order], y[..., order], w[:, order]
    per_row = y.ndim == 2
    starts = np.flatnonzero(np.r_[True, inv[1:] != inv[:-1]])
    unit = tol / np.maximum(w.sum(1), 1.0)  # the retiring threshold per unit of cost
    lam = np.full(len(p), 1e-3)
    w_design = np.add.reduceat(w, starts, axis=1)
    loss, grad, hess = _terms(model, p, inv, y, w, s, starts, w_design)
    active = np.arange(len(p))
    for _ in range(max_iter):
        pa, g, h = p[active], grad[active], hess[active]
        held = ((pa <= lo[active]) & (g > 0)) | ((pa >= hi[active]) & (g < 0))  # on a bound, pushed outward
        # retire when the full Newton step would gain less than the threshold (its decrement g H^-1 g / 2)
        going = -0.5 * (g * _damped_step(g, h, np.zeros(len(g)), held)).sum(1) > unit[active] * loss[active]
        active, pa, g, h, held = active[going], pa[going], g[going], h[going], held[going]
        if active.size == 0:
            break
        move = _bounded_step(pa, g, h, lam[active], lo[active], hi[active], held)
        # a step that the quadratic model says is worse (the bounds cut a wild step far from the optimum) is damped
        # further without trying it
        worse = ((g + 0.5 * _times(h, move)) * move).sum(1) > 0
        rows, move = active[~worse], move[~worse]
        l_new, g_new, h_new = _terms(model, p[rows] + move, inv, y[rows] if per_row else y, w[rows], s, starts,
                                     w_design[rows])  # fmt: skip
        better = l_new < loss[rows]
        kept = rows[better]
        p[kept] += move[better]
        loss[kept], grad[kept], hess[kept] = l_new[better], g_new[better], h_new[better]
        lam[active[worse]] *= 10
        lam[rows] = np.where(better, lam[rows] * 0.3, lam[rows] * 10)
        moving = np.ones(len(active), dtype=bool)
        moving[~worse] = np.abs(move).max(1) >= 1e-12
        active = active[moving & (lam[active] <= 1e12)]
    return p


def _terms(
    model: Model, p: np.ndarray, inv: np.ndarray, y: np.ndarray, w: np.ndarray, s: float, starts: np.ndarray,
    w_design: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Cost, gradient and Newton Hessian of each row of ``p`` (points sorted by design, ``starts`` of each design,
    ``w_design`` the weight of each), in chunks of rows that keep the (rows, points) arrays in cache."""
    b, k = p.shape
    loss, grad, hess = np.empty(b), np.empty((b, k)), np.empty((b, k, k))
    per_row = y.ndim == 2
    step = max(1, _CHUNK // max(len(inv), 1))
    for i in range(0, b, step):
        rows = slice(i, i + step)
        f, jac = model(p[rows], True)
        r = f[:, inv] - (y[rows] if per_row else y)
        wr = w[rows]
        beyond = r - np.clip(r, -s, s)
        loss[rows] = _cost(r, beyond, wr)
        slope = np.add.reduceat(wr * ((1 + TIE_BREAK) * r - beyond), starts, axis=1)  # clip(r) + TIE_BREAK r
        curv = np.add.reduceat(wr * (beyond == 0), starts, axis=1) + TIE_BREAK * w_design[rows]  # 1 inside
        # batched matmul: several times faster than einsum on these (rows, designs, k) stacks
        grad[rows] = np.matmul(slope[:, None, :], jac)[:, 0]
        hess[rows] = np.matmul((curv[:, :, None] * jac).transpose(0, 2, 1), jac)
    return loss, grad, hess


def _bounded_step(
    p: np.ndarray, g: np.ndarray, h: np.ndarray, lam: np.ndarray, lo: np.ndarray, hi: np.ndarray, held: np.ndarray
) -> np.ndarray:
    """The damped Newton step from ``p`` that keeps the bounds: the ``held`` parameters stay, one that the step
    would carry past its bound stops on it, and the others' step is solved again with it held there (a clipped step
    would be rejected again and again, and the row crawl)."""
    move = _damped_step(g, h, lam, held)
    past = ((p + move < lo) | (p + move > hi)) & ~held
    rows = np.flatnonzero(past.any(1))
    if rows.size:
        to_bound = np.where(past[rows], np.clip(p[rows] + move[rows], lo[rows], hi[rows]) - p[rows], 0.0)
        g_rest = g[rows] + _times(h[rows], to_bound)
        move[rows] = to_bound + _damped_step(g_rest, h[rows], lam[rows], held[rows] | past[rows])
    return np.clip(p + move, lo, hi) - p


def _times(h: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Each row's matrix times its vector: (B, k, k) x (B, k) -> (B, k)."""
    return np.matmul(h, v[:, :, None])[:, :, 0]


def _damped_step(g: np.ndarray, h: np.ndarray, lam: np.ndarray, held: np.ndarray) -> np.ndarray:
    """The Levenberg-Marquardt step (Hessian + lam diag) of the parameters not ``held`` (those get 0)."""
    eye = np.eye(g.shape[1])
    free = ~held
    h = h * (free[:, :, None] & free[:, None, :]) + held[:, :, None] * eye
    diag = np.einsum("bii->bi", h) + 1e-12
    # a resample that kept too few designs leaves some parameters unidentifiable: the absolute ridge keeps the
    # system solvable (a parameter the model does not use has a zero Jacobian column and never moves)
    damped = h + (lam[:, None, None] * diag[:, :, None] + 1e-10) * eye
    return np.linalg.solve(damped, -(g * free)[..., None])[..., 0]


def polish(
    resid: Callable[[np.ndarray], np.ndarray], x0: np.ndarray, lo: np.ndarray, hi: np.ndarray, s: float = HUBER_SCALE
) -> tuple[np.ndarray, bool, str]:
    """Refine a point estimate with scipy (trust region reflective, the loss of ``huber``); its status is the
    convergence flag.

    Returns the parameters, whether scipy converged to a finite cost, and scipy's message.
    """
    hi = np.maximum(hi, lo + 1e-300)
    x0 = np.clip(x0, lo + 1e-9 * (hi - lo), hi - 1e-9 * (hi - lo))
    res = least_squares(resid, x0, bounds=(lo, hi), loss=_scipy_loss, f_scale=s, method="trf", x_scale="jac")
    return res.x, bool(res.status > 0 and np.isfinite(res.cost)), res.message


def _scipy_loss(z: np.ndarray) -> np.ndarray:
    """The cost of ``huber`` in scipy's form: rho(z) and its first two derivatives at z = (r / s)^2."""
    root = np.sqrt(np.maximum(z, 1.0))
    inside = z <= 1
    return np.stack([np.where(inside, z, 2 * root - 1) + TIE_BREAK * z, np.where(inside, 1.0, 1 / root) + TIE_BREAK,
                     np.where(inside, 0.0, -0.5 / root**3)])  # fmt: skip


def point_order(keys: list[np.ndarray], groups: np.ndarray | None = None) -> np.ndarray:
    """The order that sorts the points by ``keys`` (the first key first), then by group label: a fit of the points
    in this order does not depend on the order they came in (neither its sums nor a point bootstrap's draws)."""
    columns = [np.asarray(k, dtype=float) for k in keys]
    if groups is not None:
        columns.append(np.unique(np.asarray(groups).astype(str), return_inverse=True)[1])
    return np.lexsort(columns[::-1])


def seed_for(seed: int, label: tuple[str, ...]) -> int:
    """A bootstrap seed derived from ``seed`` and a fit's label, so a fit does not depend on which others exist."""
    return int(np.random.SeedSequence([seed, zlib.crc32("|".join(label).encode())]).generate_state(1)[0])
