"""Model families compared: a sweep over ``model.arch`` read as one table, per system, shift, family and model size.

For the reference transfer (``analysis.curves.primary``: pretrained on the downstream system) every fine-tuned
curve with a matching scratch curve gives one row:

- the power-law exponents b of both curves with their intervals (``analysis.curves.fit_curves``);
- the fine-tuning gain, scratch / fine-tuned mean error, at the smallest and the largest N both curves have, with
  its interval over the seeds (``analysis.intervals.ratio_interval``: a Welch t interval from three seeds on each
  side, the range with two, none with one);
- the data-efficiency multiplier at the fine-tuned curve's smallest N, measured, with its interval
  (``analysis.multipliers.small_n_multipliers``);
- the effective-data law's exponents alpha (in D_F) and beta (in P) of the family, with their intervals
  (``analysis.laws``: one law per family, shared by its sizes).

The numbers are those of the tables the report writes; this module only lines them up by family. Each interval
keeps the meaning its maker gives it (``analysis.intervals``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.curves import ARCH, ERR, FIT_COLUMNS, CurveFits, N, downstream_points, pairs, primary
from analysis.intervals import ratio_interval
from analysis.laws import Laws
from analysis.powerlaw import PowerLawFit
from analysis.transfer import LawFit
from harness.models import family

ONE_FAMILY = "the runs are of one model family (model.arch is not varied)"
COLUMNS = ["system", "shift", "arch", "n_params", "n_min", "n_max"]
QUANTITIES = ("b_finetune", "b_scratch", "gain_n_min", "gain_n_max", "multiplier", "alpha", "beta")


def family_table(runs: pd.DataFrame, fits: CurveFits, multipliers: pd.DataFrame,
                 laws: Laws) -> tuple[pd.DataFrame | None, str]:
    """One row per (system, shift, family, model size) of the reference transfer: ``COLUMNS``, then each of
    ``QUANTITIES`` with its ``_lo`` and ``_hi``; or None and why the sweep has no comparison of families."""
    pts = primary(downstream_points(runs))
    if ARCH not in pts or pts[ARCH].nunique() < 2:
        return None, ONE_FAMILY
    rows = []
    for ft, sc in pairs(pts, fits.key_columns):
        shared = sorted(set(ft[N]) & set(sc[N]))
        if not shared:
            continue
        row = {"system": ft["downstream.system"].iloc[0], "shift": ft["downstream.shift"].iloc[0],
               "arch": ft[ARCH].iloc[0], "n_params": int(round(ft["n_params"].mean())), "n_min": int(shared[0]),
               "n_max": int(shared[-1])}  # fmt: skip
        row |= _with_interval("b_finetune", fits.get(ft), "b")
        row |= _with_interval("b_scratch", fits.get(sc), "b")
        for name, n in (("gain_n_min", shared[0]), ("gain_n_max", shared[-1])):
            scratch, finetuned = (rows_[rows_[N] == n][ERR].to_numpy(float) for rows_ in (sc, ft))
            lo, hi, _ = ratio_interval(scratch, finetuned)
            row |= {name: float(scratch.mean() / finetuned.mean()), f"{name}_lo": lo, f"{name}_hi": hi}
        row |= _multiplier(multipliers, ft, fits.key_columns)
        law = laws.get("data_transferred", ft)
        row |= _with_interval("alpha", law, "alpha") | _with_interval("beta", law, "beta")
        rows.append(row)
    if not rows:
        return None, "no fine-tuned curve has a scratch curve with the same config"
    table = pd.DataFrame(rows, columns=[*COLUMNS, *(f"{q}{s}" for q in QUANTITIES for s in ("", "_lo", "_hi"))])
    return table.sort_values(["system", "shift", "arch", "n_params"], kind="stable").reset_index(drop=True), ""


def _with_interval(name: str, fit: PowerLawFit | LawFit | None, param: str) -> dict[str, float]:
    """``name``, ``name_lo``, ``name_hi``: parameter ``param`` of a power-law or transfer-law fit (nan: no fit)."""
    if fit is None:
        return {name: np.nan, f"{name}_lo": np.nan, f"{name}_hi": np.nan}
    if isinstance(fit, LawFit):
        value, (lo, hi) = fit[param], fit.ci(param)
    else:
        value, (lo, hi) = float(getattr(fit, param)), getattr(fit, f"{param}_ci")
    return {name: value, f"{name}_lo": lo, f"{name}_hi": hi}


def _multiplier(table: pd.DataFrame, ft: pd.DataFrame, keys: list[str]) -> dict[str, float]:
    """The measured multiplier of the fine-tuned curve ``ft`` at its smallest N, from the multipliers table."""
    out = {"multiplier": np.nan, "multiplier_lo": np.nan, "multiplier_hi": np.nan}
    if table.empty:
        return out
    match = np.ones(len(table), dtype=bool)
    for column in (c for c in keys if c != "stage"):
        match &= table[FIT_COLUMNS.get(column, column)].astype(str).to_numpy() == str(ft[column].iloc[0])
    rows = table[match].sort_values("N")
    if rows.empty:
        return out
    first = rows.iloc[0]
    return {"multiplier": first["multiplier_interp"], "multiplier_lo": first["interp_lo"],
            "multiplier_hi": first["interp_hi"]}  # fmt: skip


def family_display(table: pd.DataFrame) -> pd.DataFrame:
    """The comparison for reading: each quantity as "value [lo, hi]" (3 significant digits), families by name."""
    shown = table[COLUMNS].assign(arch=[family(a).label for a in table["arch"]])
    for q in QUANTITIES:
        shown[q] = [_text(v, lo, hi) for v, lo, hi in zip(table[q], table[f"{q}_lo"], table[f"{q}_hi"], strict=True)]
    return shown.rename(columns={"arch": "family", "n_params": "params"})


def _text(value: float, lo: float, hi: float) -> str:
    if np.isnan(value):
        return "-"
    return f"{value:.3g}" if np.isnan(lo) or np.isnan(hi) else f"{value:.3g} [{lo:.3g}, {hi:.3g}]"
