"""Compute-optimal allocation from the fitted joint law, the full-law approach of Besiroglu et al. (2024; Hoffmann et
al. 2022's third approach), not iso-FLOP parabolas.

With err(P, N) = E + A P^-a + B N^-b (``analysis.transfer.fit_joint``) and a group's compute model
C = kappa P^gamma N^sigma (``analysis.compute``), the allocation of a compute C that minimises the error is

    P*(C) = [a A sigma / (gamma b B)]^(sigma / D) (C / kappa)^(b / D),   D = a sigma + gamma b
    N*(C) = (C / (kappa P*^gamma))^(1 / sigma)

so P* ~ C^(b/D) and N* ~ C^(a/D) (with gamma = sigma = 1, Chinchilla's b/(a+b) and a/(a+b)). A fine-tuned run
also costs its pretraining, C_pre(P) = kappa' P^gamma' (counted in full or amortised): then
C = kappa P^gamma N^sigma + C_pre(P) has no closed form, and ``optimum`` minimises over P numerically (a log grid
over P refined around its minimum; N from the budget left after pretraining), which covers both cases. Every
bootstrap fit of the law gives its own P*, N*, err*: the intervals are those of the law (``analysis.intervals``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from analysis.compute import COUNTINGS, ComputeModel, counted, group_models
from analysis.curves import FIT_COLUMNS, N, curves, key_text, label_key
from analysis.intervals import combine, interval
from analysis.load import ReportError
from analysis.transfer import LawFit

P_SPAN = 1e3  # the search for P* reaches this factor beyond the sampled sizes on either side
GRID, REFINE, ROUNDS = 400, 33, 3
C_POINTS = 25  # computes per curve of the table
OPTIMAL_COLUMNS = ["counting", "compute", "P_opt", "P_lo", "P_hi", "N_opt", "N_lo", "N_hi", "err_opt", "err_lo",
                   "err_hi", "extrapolated", "ci", "compute_model"]  # fmt: skip


def exponents(params: np.ndarray, own: ComputeModel) -> np.ndarray:
    """(k, 2): the exponents of P* ~ C^p and N* ~ C^n for law rows (E, A, a, B, b) without pretraining."""
    a, b = params[:, 2], params[:, 4]
    d = a * own.sigma + own.gamma * b
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.column_stack([b / d, a / d])


def optimum(params: np.ndarray, own: ComputeModel, pre: ComputeModel | None, c: np.ndarray,
            p_range: tuple[float, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """P*, N*, err* (each (k, m)) for law rows ``params`` (k, 5: E, A, a, B, b) at computes ``c`` (m,), searching
    P over ``p_range`` widened by P_SPAN; nan where the minimum lies at the search's edge, where the compute does not
    cover the pretraining of any size, or where the law row is nan."""
    params, c = np.asarray(params, dtype=float), np.asarray(c, dtype=float)
    lo, hi = p_range[0] / P_SPAN, p_range[1] * P_SPAN
    grid = np.broadcast_to(np.geomspace(lo, hi, GRID), (len(params), len(c), GRID))
    err = _error(params, own, pre, c, grid)
    i = np.argmin(np.where(np.isnan(err), np.inf, err), axis=-1)
    edge = (i == 0) | (i == GRID - 1) | ~np.isfinite(np.take_along_axis(err, i[..., None], -1)[..., 0])
    for _ in range(ROUNDS):  # a finer grid between the neighbours of the minimum
        left = np.take_along_axis(grid, np.maximum(i - 1, 0)[..., None], -1)
        right = np.take_along_axis(grid, np.minimum(i + 1, grid.shape[-1] - 1)[..., None], -1)
        grid = left * (right / left) ** np.linspace(0.0, 1.0, REFINE)
        err = _error(params, own, pre, c, grid)
        i = np.argmin(np.where(np.isnan(err), np.inf, err), axis=-1)
    p = np.take_along_axis(grid, i[..., None], -1)[..., 0]
    e = np.take_along_axis(err, i[..., None], -1)[..., 0]
    n = _n_for(own, pre, c[None, :], p)
    return tuple(np.where(edge | ~np.isfinite(e), np.nan, v) for v in (p, n, e))


def _n_for(own: ComputeModel, pre: ComputeModel | None, c: np.ndarray, p: np.ndarray) -> np.ndarray:
    """The N that compute ``c`` buys at size ``p`` after its pretraining (nan where nothing is left)."""
    left = c - (0.0 if pre is None else pre(p))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return np.where(left > 0, (np.maximum(left, 0.0) / own(p)) ** (1.0 / own.sigma), np.nan)


def _error(params: np.ndarray, own: ComputeModel, pre: ComputeModel | None, c: np.ndarray, p: np.ndarray
           ) -> np.ndarray:  # fmt: skip
    e, a_coef, a, b_coef, b = (params[:, i, None, None] for i in range(5))
    n = _n_for(own, pre, c[None, :, None], p)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return e + a_coef * p**-a + b_coef * n**-b


class Allocation(NamedTuple):
    """What one group's allocation under one counting rests on: its joint law, compute models, runs and their
    counted compute."""

    fit: LawFit
    own: ComputeModel
    pre: ComputeModel | None
    rows: pd.DataFrame
    spent: np.ndarray

    def optimum(self, params: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``optimum`` of law rows ``params`` at computes ``c``, over this group's sizes."""
        return optimum(params, self.own, self.pre, c, (float(self.rows["n_params"].min()),
                                                      float(self.rows["n_params"].max())))  # fmt: skip


def allocations(pts: pd.DataFrame, law_fits: dict, group: list[str]
                ) -> tuple[dict[tuple[tuple[str, ...], str], Allocation], list[tuple[str, str]]]:  # fmt: skip
    """Per (group label, counting) of every group with a joint law in ``law_fits`` (by (law, group label)): its
    ``Allocation`` from downstream points with ``run_compute``'s columns; and (group text, why) for groups with a
    law but no compute model."""
    optima, skipped = {}, []
    trained = pts[pts["stage"].isin(["finetune", "scratch"])]
    for key, g in curves(trained, group):
        fit = law_fits.get(("joint", label_key(key)))
        if fit is None:
            continue
        for counting in COUNTINGS if g["stage"].iloc[0] == "finetune" else ("training",):
            try:
                own, pre = group_models(g, counting)
            except ReportError as exc:
                skipped.append((key_text(group, key), str(exc)))
                break
            optima[(label_key(key), counting)] = Allocation(fit, own, pre, g, counted(g, counting))
    return optima, skipped


def compute_optimal(pts: pd.DataFrame, law_fits: dict, group: list[str]) -> tuple[pd.DataFrame, pd.DataFrame,
                                                                                  list[tuple[str, str]]]:  # fmt: skip
    """From downstream points with ``run_compute``'s columns, the laws' fits by (law, group label) and
    the group columns: the allocation table (one row per group, counting and compute: OPTIMAL_COLUMNS), the law
    rows (exponents of P* and N*, the break-even compute of pretraining: law, group, param, value, lo, hi, ci,
    message) and (group text, why) for groups with a law but no allocation."""
    optima, skipped = allocations(pts, law_fits, group)
    rows, law_rows = [], []
    for (_, counting), alloc in optima.items():
        keys = dict(zip(_names(group), alloc.rows[group].iloc[0], strict=True))
        rows += _curve_rows(keys, counting, alloc, np.geomspace(alloc.spent.min(), alloc.spent.max(), C_POINTS))
        if counting == "training":
            law_rows += _exponent_rows(keys, alloc.fit, alloc.own)
    law_rows += _break_even_rows(optima, group)
    return pd.DataFrame(rows, columns=[*_names(group), *OPTIMAL_COLUMNS]), pd.DataFrame(law_rows), skipped


def decades(spent: np.ndarray) -> np.ndarray:
    """The powers of ten within the range of computes ``spent`` (the one nearest its geometric middle where the
    range holds none): the computes P* is claimed at."""
    lo, hi = np.log10(np.min(spent)), np.log10(np.max(spent))
    powers = np.arange(np.ceil(lo), np.floor(hi) + 1)
    return 10.0 ** (powers if len(powers) else np.array([np.round((lo + hi) / 2)]))


def decade_optima(pts: pd.DataFrame, law_fits: dict, group: list[str]) -> pd.DataFrame:
    """The allocation table (as ``compute_optimal``'s, with ``n_points``: the runs of the law) at ``decades`` of
    each group's and counting's computes: the rows the P* claims (``analysis.claims``) are made of."""
    rows = []
    for (_, counting), alloc in allocations(pts, law_fits, group)[0].items():
        keys = dict(zip(_names(group), alloc.rows[group].iloc[0], strict=True))
        rows += [r | {"n_points": len(alloc.rows)} for r in _curve_rows(keys, counting, alloc, decades(alloc.spent))]
    return pd.DataFrame(rows, columns=[*_names(group), *OPTIMAL_COLUMNS, "n_points"])


def _names(group: list[str]) -> list[str]:
    return [FIT_COLUMNS.get(c, c) for c in group]


def _curve_rows(keys: dict, counting: str, alloc: Allocation, c: np.ndarray) -> list[dict]:
    fit, g = alloc.fit, alloc.rows
    point = alloc.optimum(fit.values[None, :], c)
    boot = alloc.optimum(fit.boot, c) if len(fit.boot) else (np.empty((0, len(c))),) * 3
    model = alloc.own.text() + ("" if alloc.pre is None else f"; pretraining {alloc.pre.text()}")
    rows = []
    for j, cj in enumerate(c):
        values = {}
        for name, v, b in zip(("P", "N", "err"), point, boot, strict=True):
            lo, hi = interval(b[:, j], fit.basis)
            values |= {f"{name}_opt": float(v[0, j]), f"{name}_lo": lo, f"{name}_hi": hi}
        outside = not (g["n_params"].min() <= values["P_opt"] <= g["n_params"].max()
                       and g[N].min() <= values["N_opt"] <= g[N].max())  # fmt: skip
        rows.append({**keys, "counting": counting, "compute": float(cj), **values, "extrapolated": outside,
                     "ci": fit.basis.label, "compute_model": model})  # fmt: skip
    return rows


def _exponent_rows(keys: dict, fit: LawFit, own: ComputeModel) -> list[dict]:
    point, boot = exponents(fit.values[None, :], own)[0], exponents(fit.boot, own)
    return [{"law": "compute_optimal", **keys, "param": name, "value": float(point[i]),
             **dict(zip(("lo", "hi"), interval(boot[:, i], fit.basis), strict=True)), "ci": fit.basis.label,
             "message": own.text()} for i, name in enumerate(("P_opt_exponent", "N_opt_exponent"))]  # fmt: skip


def break_even(ft: Allocation, scratch: Allocation, c: np.ndarray) -> np.ndarray:
    """Per law row (point estimate first, then the paired bootstrap fits): the smallest compute of ``c`` from which
    on the fine-tuned optimum is at most the scratch one; inf when the scratch optimum is lower at the largest."""
    k = min(len(ft.fit.boot), len(scratch.fit.boot))
    f_err = ft.optimum(np.vstack([ft.fit.values, ft.fit.boot[:k]]), c)[2]
    s_err = scratch.optimum(np.vstack([scratch.fit.values, scratch.fit.boot[:k]]), c)[2]
    better = np.where(np.isnan(f_err) | np.isnan(s_err), np.nan, f_err <= s_err)
    worse_after = np.flip(np.maximum.accumulate(np.flip(np.nan_to_num(1 - better, nan=1.0), -1), -1), -1)
    first = np.argmin(worse_after, axis=-1)  # the first compute with no worse one after it
    out = np.where(worse_after[np.arange(len(first)), first] == 0, c[first], np.inf)
    return np.where(np.isnan(better).all(-1), np.nan, out)


def _break_even_rows(optima: dict[tuple[tuple[str, ...], str], Allocation], group: list[str]) -> list[dict]:
    """A break_even law row per fine-tuned group and counting with pretraining, against its scratch group."""
    rows = []
    stage_at = group.index("stage")
    for (label, counting), ft in optima.items():
        if counting == "training" or label[stage_at] != "finetune":
            continue
        scratch_label = tuple("scratch" if i == stage_at else ("" if group[i].startswith("pretrain.") else v)
                              for i, v in enumerate(label))  # fmt: skip
        scratch = optima.get((scratch_label, "training"))
        if scratch is None:
            continue
        spent = np.concatenate([ft.spent, scratch.spent])
        c = np.geomspace(spent.min(), spent.max(), 2 * C_POINTS - 1)
        values = break_even(ft, scratch, c)
        basis = combine(ft.fit.basis, scratch.fit.basis)
        keys = dict(zip(_names(group), ft.rows[group].iloc[0], strict=True))
        rows.append({"law": "break_even", **keys, "param": f"compute ({counting})", "value": float(values[0]),
                     **dict(zip(("lo", "hi"), interval(values[1:], basis), strict=True)), "ci": basis.label,
                     "message": f"smallest total compute within {c[0]:.3g}-{c[-1]:.3g} FLOPs from which the "
                                "compute-optimal fine-tuned error is at most scratch's (inf: not within it)"})
    return rows
