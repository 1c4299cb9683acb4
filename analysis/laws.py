"""From ok summary rows and their curve fits to the transfer scaling laws of ``analysis.transfer``, as tables.

A law's group is a curve key without the model size: (system, shift, stage, model family where the runs name one,
pretraining system, strategy and any other varied axis). Per fine-tuned group, every fine-tuned run (P =
``n_params``, D_F = ``downstream.n_train``, error e) gets D_E from the fitted power law of the scratch curve with
the same config and model size, and D_T = D_E - D_F; the law D_T = k D_F^alpha P^beta is fitted to the runs with a
usable D_T. Per fine-tuned and per scratch group, the joint law err = E + A P^-a + B N^-b is fitted to its runs.

Targets outside the scratch curve's sampled range: D_E is read from the fitted curve beyond the largest (or below
the smallest) sampled N, and the point is flagged ``extrapolated``; up to MAX_EXTRAPOLATION times the largest
sampled N it is used, beyond that it is left out (``beyond``), as are errors the scratch fit never reaches
(``unreachable``: at or below its floor c) and points where scratch needs no more samples than fine-tuning
(``no_gain``: D_T <= 0, no log). Each bootstrap resample applies the same rules with the scratch curve's own
bootstrap fit, so the intervals carry the uncertainty of the scratch curve as well as the spread of the runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis.curves import (
    ERR,
    FIT_COLUMNS,
    CurveFits,
    N,
    curves,
    downstream_points,
    key_text,
    label_key,
    pairs,
    size_column,
)
from analysis.load import ReportError
from analysis.robust import seed_for
from analysis.transfer import LawFit, effective_data, fit_joint, fit_transfer

MAX_EXTRAPOLATION = 100.0  # D_E is used up to this many times the scratch curve's largest sampled N
LAWS = {"data_transferred": "D_T = k D_F^alpha P^beta", "joint": "err = E + A P^-a + B N^-b"}
LAW_STATS = ["n_points", "n_sizes", "n_distinct_n", "n_extrapolated", "ci", "ci_df", "r2", "rmse", "converged",
             "message"]  # fmt: skip
POINT_COLUMNS = ["id", "seed", "n_params", "d_f", "err", "d_e", "d_t", "scratch_n_max", "extrapolated", "use"]


@dataclass(frozen=True)
class Laws:
    """The transfer laws of a sweep.

    ``table``: one row per (law, group, parameter) with value, lo, hi (bootstrap; ``ci`` says what the interval is)
    and the fit's statistics (LAW_STATS; ``n_extrapolated``: the fitted points whose D_E was extrapolated, 0 for the
    joint law);
    ``points``: one row per fine-tuned run with its D_F, error, D_E, D_T, whether D_E was extrapolated and how it
    was used (``ok``, ``unreachable``, ``beyond``, ``no_gain``); ``fits``: (law, group label) -> LawFit;
    ``skipped``: (law, group text, why) for groups that have runs but no fit; ``boot_dt``: each point's D_T read
    from every bootstrap fit of its scratch curve (n_boot, points; nan where unusable).
    """

    group_columns: list[str]
    table: pd.DataFrame
    points: pd.DataFrame
    fits: dict[tuple[str, tuple[str, ...]], LawFit]
    skipped: list[tuple[str, str, str]]
    boot_dt: np.ndarray = field(default_factory=lambda: np.empty((0, 0)), repr=False)

    def get(self, law: str, rows: pd.DataFrame) -> LawFit | None:
        """The ``law`` fit of the group these rows belong to (None when it was not fitted)."""
        return self.fits.get((law, label_key(tuple(rows[self.group_columns].iloc[0]))))


def fit_laws(runs: pd.DataFrame, fits: CurveFits, *, n_boot: int = 1000, seed: int = 0) -> Laws:
    """Effective-data and joint laws of every group that supports them; bootstrap seeds derive from ``seed``.

    Each resample of the effective-data law reads D_E from one bootstrap fit of the scratch curves, so that law uses
    at most as many resamples as ``fits`` has bootstrap fits.
    """
    pts = downstream_points(runs)
    group = [c for c in fits.key_columns if not size_column(c)]
    points, boot_dt = _transfer_points(pts, fits, group)
    boot_dt = boot_dt[:n_boot]
    rows, out, skipped = [], {}, []
    for key, g in curves(points, group):
        label = label_key(key)
        try:
            law = fit_transfer(g["d_f"], g["n_params"], g["d_t"].where(g["use"] == "ok"), d_t_boot=boot_dt[:, g.index],
                               n_boot=len(boot_dt), seed=seed_for(seed, ("data_transferred", *label)),
                               groups=g["seed"])  # fmt: skip
        except ReportError as exc:
            skipped.append(("data_transferred", key_text(group, key), str(exc)))
            continue
        used = g[g["use"] == "ok"]
        out[("data_transferred", label)] = law
        rows += _rows("data_transferred", group, key, law, used["n_params"], used["d_f"], used["extrapolated"].sum())
    trained = pts[pts["stage"].isin(["finetune", "scratch"])]
    for key, g in curves(trained, group):
        label = label_key(key)
        try:
            law = fit_joint(g["n_params"], g[N], g[ERR], n_boot=n_boot, seed=seed_for(seed, ("joint", *label)),
                            groups=g["seed"])  # fmt: skip
        except ReportError as exc:
            skipped.append(("joint", key_text(group, key), str(exc)))
            continue
        out[("joint", label)] = law
        rows += _rows("joint", group, key, law, g["n_params"], g[N], 0)
    columns = ["law", *(FIT_COLUMNS.get(c, c) for c in group), "param", "value", "lo", "hi", *LAW_STATS]
    table = pd.DataFrame(rows, columns=columns)
    return Laws(group, table, points.reset_index(drop=True), out, skipped, boot_dt)


def _transfer_points(pts: pd.DataFrame, fits: CurveFits, group: list[str]) -> tuple[pd.DataFrame, np.ndarray]:
    """One row per fine-tuned run with a fitted scratch curve (group columns + POINT_COLUMNS), and the D_T of every
    bootstrap fit of that scratch curve (n_boot, rows); rows with no matching scratch fit are left out."""
    index, d_e, n_min, n_max, boots = [], [], [], [], []
    for ft, sc in pairs(pts, fits.key_columns):
        scratch = fits.get(sc)
        if scratch is None:
            continue
        point, boot = effective_data(scratch, ft[ERR].to_numpy(float))
        index.append(ft.index.to_numpy())
        d_e.append(point)
        boots.append(boot)
        n_min.append(np.full(len(ft), float(sc[N].min())))
        n_max.append(np.full(len(ft), float(sc[N].max())))
    if not index:
        return pd.DataFrame(columns=[*group, *POINT_COLUMNS]), np.empty((0, 0))
    rows = pts.loc[np.concatenate(index)]
    d_f, err = rows[N].to_numpy(float), rows[ERR].to_numpy(float)
    d_e, n_min, n_max, boot_de = (np.concatenate(v, axis=-1) for v in (d_e, n_min, n_max, boots))
    points = rows[[*group, "id", "seed", "n_params"]].assign(
        d_f=d_f, err=err, d_e=d_e, d_t=d_e - d_f, scratch_n_max=n_max, extrapolated=(d_e > n_max) | (d_e < n_min),
        use=_use(d_e, d_f, n_max),
    )  # fmt: skip
    return points.reset_index(drop=True), np.where(_use(boot_de, d_f, n_max) == "ok", boot_de - d_f, np.nan)


def _use(d_e: np.ndarray, d_f: np.ndarray, n_max: float) -> np.ndarray:
    """How a D_E enters the fit: ok, unreachable (nan), beyond (> MAX_EXTRAPOLATION n_max) or no_gain (<= D_F)."""
    return np.select(
        [np.isnan(d_e), d_e > MAX_EXTRAPOLATION * n_max, d_e <= d_f], ["unreachable", "beyond", "no_gain"], "ok"
    )


def _rows(law: str, group: list[str], key: tuple, fit: LawFit, p: pd.Series, n: pd.Series, extrapolated: int
          ) -> list[dict]:  # fmt: skip
    stats = {"n_points": fit.n_points, "n_sizes": int(p.nunique()), "n_distinct_n": int(n.nunique()),
             "n_extrapolated": int(extrapolated), "ci": fit.basis.label, "ci_df": fit.basis.df, "r2": fit.r2,
             "rmse": fit.rmse, "converged": fit.converged, "message": fit.message}  # fmt: skip
    keys = {FIT_COLUMNS.get(c, c): v for c, v in zip(group, key, strict=True)}
    return [{"law": law, **keys, "param": name, "value": float(fit.values[i]), "lo": float(fit.lo[i]),
             "hi": float(fit.hi[i]), **stats} for i, name in enumerate(fit.params)]  # fmt: skip
