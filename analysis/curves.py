"""From ok summary rows to curves: downstream points, curve keys, per-curve fits, matched gains.

A curve is the set of finetune (or scratch) runs that differ only in ``downstream.n_train`` and ``seed``. Its key
is (system, shift, stage, width, modes, pretrain system, strategy) plus any other config column that really
varies between runs at the same N and seed (tuned parameters, such as a learning rate chosen per point, are not).
A sweep whose runs name a model family (``model.arch``: FNO configs leave it out) has the family after the stage,
and the other families' size keys (``model.channels``, ...) enter the key as varied columns.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.intervals import too_few_designs
from analysis.load import ERROR
from analysis.powerlaw import PowerLawFit, fit
from analysis.robust import seed_for
from harness.models import DEFAULT_ARCH
from harness.tasks import TIME_KEYS
from harness.train import DEFAULT_METRIC, METRICS

N, ERR = "downstream.n_train", ERROR
IMPROVING = "budget_limited"  # summary column: the second half of the schedule still lowered the best validation
PANEL = ["downstream.system", "downstream.shift"]
SIZE = ["model.width", "model.modes"]
ARCH = "model.arch"  # the model family, where the runs name one
PRETRAIN = ["pretrain.system", "pretrain.strategy"]
PRETRAIN_N = "pretrain.n_train"  # an axis of its own where a sweep varies it (analysis.pretrain_law)
BASE_KEY = [*PANEL, "stage", *SIZE, *PRETRAIN]
DOWNSTREAM = ("finetune", "scratch", "zeroshot")
SHIFT_ORDER = {"id": 0, "moderate": 1, "large": 2}
RUN_COLUMNS = ("id", "seed", "n_params", "resolution", IMPROVING)
TOP_CONFIG = ("resolution", "task", *TIME_KEYS)  # config columns without a dot (time_window, nt, ...)
MIN_N_OFFSET = 4  # distinct N needed to fit the offset c as well; 2 or 3 give the pure power law
_NOT_AXES = {N, "seed", "init", "data_seed", ARCH, *BASE_KEY}
FIT_COLUMNS = {
    "downstream.system": "system", "downstream.shift": "shift", "stage": "stage", ARCH: "arch", "model.width": "width",
    "model.modes": "modes", "pretrain.system": "pretrain_system", "pretrain.strategy": "strategy",
}  # fmt: skip
STAT_COLUMNS = [
    "n_params", "n_points", "n_distinct", "n_min", "n_max", "offset", "a", "a_lo", "a_hi", "b", "b_lo", "b_hi",
    "c", "c_lo", "c_hi", "ci", "ci_df", "ci_resamples", "few_n", "r2", "rmse", "converged", "message",
]  # fmt: skip


def downstream_points(runs: pd.DataFrame) -> pd.DataFrame:
    """Finetune, scratch and zero-shot rows with a positive error; pretrain columns blanked for scratch; the model
    family filled in (the FNO's) where the runs name one, else left out; the FNO's sizes nullable where other
    families have none."""
    wanted = [c for c in runs.columns if "." in c or c in (*BASE_KEY, ERR, *RUN_COLUMNS, *TOP_CONFIG)]
    pts = runs.loc[runs["stage"].isin(DOWNSTREAM) & (runs[ERR] > 0), wanted]  # only what curves use: faster
    if ARCH in pts and pts[ARCH].notna().any():
        pts[ARCH] = pts[ARCH].astype("string").fillna(DEFAULT_ARCH)
    else:
        pts = pts.drop(columns=ARCH, errors="ignore")
    for c in BASE_KEY:
        pts[c] = pts[c].astype("string").fillna("") if c not in SIZE else pts[c]
    pts.loc[pts["stage"] == "scratch", PRETRAIN] = ""
    return pts.astype({c: int if pts[c].notna().all() else "Int64" for c in SIZE}).reset_index(drop=True)


def base_key(pts: pd.DataFrame) -> list[str]:
    """BASE_KEY, with the model family after the stage where the runs name one (``downstream_points``)."""
    return [*PANEL, "stage", ARCH, *SIZE, *PRETRAIN] if ARCH in pts else list(BASE_KEY)


def size_column(column: str) -> bool:
    """Whether a config column is part of a model's size (``model.*`` but the family)."""
    return column.startswith("model.") and column != ARCH


def model_columns(pts: pd.DataFrame) -> list[str]:
    """The columns that tell the runs' models apart: the family (where named), the FNO's width and modes, and every
    other family's size key the runs hold (the parameter target and count follow from them)."""
    sizes = [c for c in pts.columns if size_column(c) and c not in (*SIZE, "model.params", "model.n_params")]
    return [c for c in (ARCH, *SIZE) if c in pts] + sorted(sizes)


def model_labels(pts: pd.DataFrame) -> pd.Series:
    """Each row's model as text (its family and sizes), to group and pick runs by model."""
    columns = model_columns(pts)
    return pts[columns].astype("string").fillna("").agg(" ".join, axis=1)


def key_columns(pts: pd.DataFrame) -> list[str]:
    """``base_key`` plus every other config column that takes several values at the same (curve, N, seed).

    Tuning columns (``tune.*``) and the tuned parameters (the keys of ``tune.params``) are never axes: a study's
    choice follows its sweep point, and several points at the same (curve, N, seed) differ in them.
    """
    config = [c for c in pts.columns if ("." in c or c in TOP_CONFIG) and c not in _NOT_AXES | tuned_params(pts)]
    base = base_key(pts)
    if pts.empty or not config:
        return base
    spread = pts.groupby([*base, N, "seed"], dropna=False)[config].nunique(dropna=False).max()
    return [*base, *sorted(c for c in config if spread[c] > 1)]


def tuned_params(pts: pd.DataFrame) -> set[str]:
    """The tuning columns and the parameters a tuned sweep's studies chose (keys of its ``tune.params`` JSON)."""
    tune = {c for c in pts.columns if c.startswith("tune.")}
    if "tune.params" not in pts:
        return tune
    for text in pts["tune.params"].dropna().unique():
        tune |= set(json.loads(text)) if isinstance(text, str) else set()
    return tune


def label_key(values: tuple) -> tuple[str, ...]:
    """A hashable curve key (nan-safe): every value as text."""
    return tuple("" if pd.isna(v) else str(v) for v in values)


def key_text(columns: list[str], key: tuple) -> str:
    """A curve or group key in words: "system poisson, shift id, ..." (empty values left out)."""
    return ", ".join(f"{FIT_COLUMNS.get(c, c)} {v}" for c, v in zip(columns, key, strict=True) if str(v) != "")


@dataclass(frozen=True)
class CurveFits:
    """Per-curve power-law fits: ``table`` (one row per curve) and the fits by ``label_key`` of the curve key."""

    key_columns: list[str]
    table: pd.DataFrame
    fits: dict[tuple[str, ...], PowerLawFit]

    def get(self, rows: pd.DataFrame) -> PowerLawFit | None:
        """The fit of the curve these rows belong to (None when it was not fitted)."""
        return self.fits.get(label_key(tuple(rows[self.key_columns].iloc[0])))


def curves(pts: pd.DataFrame, keys: list[str]) -> Iterator[tuple[tuple, pd.DataFrame]]:
    """(key values, rows) per curve, in a stable order."""
    if pts.empty:
        return
    yield from pts.groupby(keys, dropna=False, sort=True)


def fit_curves(runs: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0) -> CurveFits:
    """Fit every finetune and scratch curve with >= 2 distinct N (offset from MIN_N_OFFSET distinct N on).

    Points are the per-seed runs, resampled as ``analysis.intervals`` says (``ci``: what the intervals are;
    ``few_n``: too few distinct N beyond the parameters for the data to check the law's form). Each
    curve's bootstrap seed is derived from ``seed`` and its key, so results do not depend on which other curves are
    present.
    """
    pts = downstream_points(runs)
    keys = key_columns(pts)
    rows, fits = [], {}
    for key, g in curves(pts[pts["stage"] != "zeroshot"], keys):
        distinct = g[N].nunique()
        if distinct < 2:
            continue
        label = label_key(key)
        f = fit_curve(g, n_boot=n_boot, seed=seed_for(seed, label))
        fits[label] = f
        rows.append({
            **{FIT_COLUMNS.get(c, c): v for c, v in zip(keys, key, strict=True)},
            "n_params": int(round(g["n_params"].mean())), "n_points": f.n_points, "n_distinct": distinct,
            "n_min": float(g[N].min()), "n_max": float(g[N].max()), "offset": f.offset,
            "a": f.a, "a_lo": f.a_ci[0], "a_hi": f.a_ci[1], "b": f.b, "b_lo": f.b_ci[0], "b_hi": f.b_ci[1],
            "c": f.c, "c_lo": f.c_ci[0], "c_hi": f.c_ci[1], "ci": f.basis.label, "ci_df": f.basis.df,
            "ci_resamples": f.basis.resamples, "few_n": too_few_designs(distinct, 3 if f.offset else 2),
            "r2": f.r2, "rmse": f.rmse,
            "converged": f.converged, "message": f.message,
        })  # fmt: skip
    columns = [FIT_COLUMNS.get(c, c) for c in keys] + STAT_COLUMNS
    return CurveFits(keys, pd.DataFrame(rows, columns=columns), fits)


def fit_curve(rows: pd.DataFrame, *, n_boot: int, seed: int) -> PowerLawFit:
    """The power law of one curve's runs (>= 2 distinct N): the offset c from MIN_N_OFFSET distinct N on, the seeds
    as the bootstrap's groups."""
    offset = rows[N].nunique() >= MIN_N_OFFSET
    return fit(rows[N].to_numpy(), rows[ERR].to_numpy(), offset=offset, n_boot=n_boot, seed=seed,
               groups=rows["seed"].to_numpy())  # fmt: skip


def mean_points(rows: pd.DataFrame, x: str = N, y: str = ERR) -> pd.DataFrame:
    """Mean, min and max of ``y`` over seeds at each ``x``, sorted by ``x`` (rows missing ``x`` or ``y`` left out)."""
    xs, ys = rows[x].to_numpy(float), rows[y].to_numpy(float)
    keep = ~(np.isnan(xs) | np.isnan(ys))
    order = np.argsort(xs[keep], kind="stable")
    xs, ys = xs[keep][order], ys[keep][order]
    if len(xs) == 0:
        return pd.DataFrame({x: xs, "mean": xs, "min": xs, "max": xs})
    x_u, starts, counts = np.unique(xs, return_index=True, return_counts=True)
    return pd.DataFrame({x: x_u, "mean": np.add.reduceat(ys, starts) / counts, "min": np.minimum.reduceat(ys, starts),
                         "max": np.maximum.reduceat(ys, starts)})  # fmt: skip


def budget_limited_at(rows: pd.DataFrame, x: str = N) -> np.ndarray | None:
    """Per sorted distinct ``x``: whether any run there was budget-limited (``harness.train.loop.BUDGET_GAIN``); None
    when the runs do not record it (sweeps written before the summary had ``budget_limited``)."""
    if IMPROVING not in rows or rows[IMPROVING].isna().all():
        return None
    xs = rows[x].to_numpy(float)
    flag = rows[IMPROVING].astype("boolean").fillna(False).to_numpy(bool)
    x_u, codes = np.unique(xs[~np.isnan(xs)], return_inverse=True)
    return np.bincount(codes, weights=flag[~np.isnan(xs)], minlength=len(x_u)) > 0


def primary_strategy(pts: pd.DataFrame) -> str:
    """The reference pretraining strategy: "supervised" when present, else the most common one."""
    strategies = pts.loc[pts["stage"] == "finetune", "pretrain.strategy"]
    if (strategies == "supervised").any() or strategies.empty:
        return "supervised"
    return str(strategies.value_counts().sort_index().idxmax())


def at_largest_pretraining(pts: pd.DataFrame) -> pd.DataFrame:
    """The rows of each pretraining (system and strategy) at its largest ``pretrain.n_train``, and the rows without
    one (scratch): where a sweep varies the pretraining size, the comparisons across strategies and with scratch are
    made at the largest (``analysis.pretrain_law`` draws the rest)."""
    if PRETRAIN_N not in pts:
        return pts
    size = pts[PRETRAIN_N]
    largest = size.groupby([pts[c] for c in PRETRAIN], dropna=False).transform("max")
    return pts[size.isna() | (size == largest)]


def primary(pts: pd.DataFrame) -> pd.DataFrame:
    """Scratch rows plus the reference transfer: pretrained on the downstream system, primary strategy, at its
    largest pretraining size.

    When no run was pretrained on its own downstream system, every non-mixed pretraining counts.
    """
    pts = at_largest_pretraining(pts)
    transfer = pts["stage"] != "scratch"
    same = pts["pretrain.system"] == pts["downstream.system"]
    if not (transfer & same).any():
        same = pts["pretrain.system"] != "mixed"
    keep = ~transfer | (same & (pts["pretrain.strategy"] == primary_strategy(pts)))
    return pts[keep]


def gains(pts: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Scratch error / finetune error (means over seeds) for finetune curves matched to a scratch curve.

    Matched on every curve-key column except the stage and the pretraining ones, and on N.
    """
    match = [c for c in keys if c != "stage" and not c.startswith("pretrain.")] + [N]
    means = pts.groupby([*keys, N], dropna=False, sort=True).agg(err=(ERR, "mean"), n_params=("n_params", "mean"))
    means = means.reset_index()
    ft = means[means["stage"] == "finetune"]
    sc = means.loc[means["stage"] == "scratch", [*match, "err"]]
    out = ft.merge(sc, on=match, suffixes=("_ft", "_sc"))
    return out.assign(gain=out["err_sc"] / out["err_ft"])


def pairs(pts: pd.DataFrame, keys: list[str]) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
    """(finetune curve rows, scratch curve rows) for every finetune curve that has a matching scratch curve."""
    match = [c for c in keys if c != "stage" and not c.startswith("pretrain.")]
    trained = pts[pts["stage"].isin(["finetune", "scratch"])]
    for _, rows in curves(trained, match):
        sc = rows[rows["stage"] == "scratch"]
        if not sc.empty:
            for _, ft in curves(rows[rows["stage"] == "finetune"], keys):
                yield ft, sc


def ordered_panels(pts: pd.DataFrame) -> list[tuple[str, str]]:
    """The (system, shift) panels present, systems alphabetically, shifts id < moderate < large < others."""
    pairs = pts[PANEL].drop_duplicates().itertuples(index=False, name=None)
    return sorted(pairs, key=lambda p: (p[0], SHIFT_ORDER.get(p[1], len(SHIFT_ORDER)), p[1]))


def spread_values(values: np.ndarray, k: int = 4) -> list:
    """Up to ``k`` values spread evenly over the sorted distinct ``values`` (first and last included)."""
    distinct = np.unique(values)
    idx = np.unique(np.round(np.linspace(0, len(distinct) - 1, min(k, len(distinct)))).astype(int))
    return [distinct[i] for i in idx]


def metric_label(runs: pd.DataFrame) -> str:
    """How figures name the error in ``runs``' ``ERR``: the metric ``analysis.load.use_metric`` put there."""
    return METRICS[runs.attrs.get("metric", DEFAULT_METRIC)]
