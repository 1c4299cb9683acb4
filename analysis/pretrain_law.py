"""Pretraining-set size as an axis: downstream error against the number of pretraining samples, and its law.

A sweep that varies ``pretrain.n_train`` (P) gives, at each downstream N, one fine-tuned error per P. A curve is the
fine-tuned runs that differ only in P and the seed: its key is the downstream curve's key (system, shift, model
size, pretraining system, strategy and every other varied axis, the model family ``model.arch`` among them where a
sweep varies it) without P, plus N. Per curve with two or more distinct P the power law err = a P^-b + c is fitted
by ``analysis.powerlaw.fit`` (the offset c from ``MIN_N_OFFSET`` distinct P on, else c = 0; the seeds resampled as
groups for the 95 % bootstrap intervals), each curve's bootstrap seed derived from the report's seed and its key.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from analysis.curves import (
    ERR,
    FIT_COLUMNS,
    MIN_N_OFFSET,
    PRETRAIN_N,
    N,
    curves,
    downstream_points,
    key_columns,
    label_key,
)
from analysis.powerlaw import PowerLawFit, fit
from analysis.robust import seed_for

LAW = "err = a P^-b + c"
NO_AXIS = "pretrain.n_train is not varied (each fine-tuned curve has one pretraining size)"
COLUMNS = {**FIT_COLUMNS, N: "n_train"}  # FIT_COLUMNS names the family (model.arch) too
STATS = ["n_params", "n_points", "n_distinct", "p_min", "p_max", "offset", "a", "a_lo", "a_hi", "b", "b_lo", "b_hi",
         "c", "c_lo", "c_hi", "r2", "converged", "message"]


@dataclass(frozen=True)
class PretrainFits:
    """The pretraining-size laws of a sweep: ``table`` (one row per curve: its key columns, then ``STATS``), the fits
    by ``label_key`` of the curve key, the curve key's columns, and why there is none ("" when there are)."""

    key_columns: list[str]
    table: pd.DataFrame
    fits: dict[tuple[str, ...], PowerLawFit]
    skip: str = ""

    def get(self, rows: pd.DataFrame) -> PowerLawFit | None:
        """The fit of the curve these rows belong to (None when it was not fitted)."""
        return self.fits.get(label_key(tuple(rows[self.key_columns].iloc[0])))


def pretrain_points(runs: pd.DataFrame) -> tuple[pd.DataFrame, list[str], str]:
    """The fine-tuned rows with a pretraining size, the curve key (without P, with N), and why there is no curve
    ("" when there is one)."""
    pts = downstream_points(runs)
    if PRETRAIN_N not in pts:
        return pts.iloc[:0], [], NO_AXIS
    tuned = pts[(pts["stage"] == "finetune") & pts[PRETRAIN_N].notna() & pts[N].notna()]
    keys = [c for c in key_columns(pts) if c != PRETRAIN_N] + [N]
    if tuned.empty or tuned.groupby(keys, dropna=False)[PRETRAIN_N].nunique().max() < 2:
        return tuned, keys, NO_AXIS
    return tuned, keys, ""


def fit_pretrain_sizes(runs: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0) -> PretrainFits:
    """Fit ``LAW`` to every curve of two or more pretraining sizes (module docstring)."""
    pts, keys, skip = pretrain_points(runs)
    columns = [COLUMNS.get(c, c) for c in keys] + STATS
    if skip:
        return PretrainFits(keys, pd.DataFrame(columns=columns), {}, skip)
    rows, fits = [], {}
    for key, g in curves(pts, keys):
        distinct = g[PRETRAIN_N].nunique()
        if distinct < 2:
            continue
        label = label_key(key)
        f = fit(g[PRETRAIN_N].to_numpy(float), g[ERR].to_numpy(float), offset=distinct >= MIN_N_OFFSET,
                n_boot=n_boot, seed=seed_for(seed, ("pretrain_size", *label)), groups=g["seed"].to_numpy())
        fits[label] = f
        rows.append({**{COLUMNS.get(c, c): v for c, v in zip(keys, key, strict=True)},
                     "n_params": int(round(g["n_params"].mean())), "n_points": f.n_points, "n_distinct": distinct,
                     "p_min": float(g[PRETRAIN_N].min()), "p_max": float(g[PRETRAIN_N].max()), "offset": f.offset,
                     "a": f.a, "a_lo": f.a_ci[0], "a_hi": f.a_ci[1], "b": f.b, "b_lo": f.b_ci[0], "b_hi": f.b_ci[1],
                     "c": f.c, "c_lo": f.c_ci[0], "c_hi": f.c_ci[1], "r2": f.r2, "converged": f.converged,
                     "message": f.message})  # fmt: skip
    return PretrainFits(keys, pd.DataFrame(rows, columns=columns), fits)
