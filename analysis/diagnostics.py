"""Fit diagnostics: the residual of every fitted point (residuals.csv and the residuals figure) and the warning shown
beside a fit whose exponent sits on its bound (the fit was stopped there, not at an optimum the data chose) or
whose data span less than a decade on an axis the law has an exponent for (the exponent rests on a short lever arm).

Residuals are log(observed) - log(predicted): the error of a run for the power-law curves and the joint law, the
data transferred D_T for its law.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.curves import ERR, CurveFits, N, curves, downstream_points, key_text, label_key
from analysis.laws import Laws
from analysis.powerlaw import B_MAX
from analysis.transfer import LINEAR_BOUND

DECADE = 10.0
ON_BOUND = 1e-3  # within this (relative to max(1, |bound|)) of a bound, an exponent is on it
RESIDUAL_COLUMNS = ["fit", "group", "stage", "id", "n_params", "x", "observed", "predicted", "log_residual"]
FIT_NAMES = {"power_law": "err = a N^-b + c", "joint": "err = E + A P^-a + B N^-b",
             "data_transferred": "D_T = k D_F^alpha P^beta"}  # fmt: skip


@dataclass(frozen=True)
class Diagnostics:
    """``residuals``: one row per fitted point (RESIDUAL_COLUMNS; x is N, or D_F for the D_T law); ``warnings``:
    (fit, group label) -> the warning ("" or absent: none), the label as ``analysis.curves.label_key`` makes it."""

    residuals: pd.DataFrame
    warnings: dict[tuple[str, tuple[str, ...]], str]

    def warning(self, fit: str, key: tuple) -> str:
        """The warning of ``fit`` (power_law, joint, data_transferred) for the group with key values ``key``."""
        return self.warnings.get((fit, label_key(key)), "")


def fit_warning(exponents: dict[str, tuple[float, float, float]], spans: dict[str, np.ndarray]) -> str:
    """The warning of one fit: each exponent (value, lower bound, upper bound) on a bound, each axis whose values
    span less than a decade; "" when none."""
    notes = [f"{name} = {v:.2g} on its bound {bound:g}" for name, (v, lo, hi) in exponents.items() for bound in (lo, hi)
             if np.isfinite(v) and abs(v - bound) / max(1, abs(bound)) < ON_BOUND]
    notes += [f"{axis} spans {ratio:.2g}x, less than a decade" for axis, values in spans.items()
              if (ratio := float(np.max(values) / np.min(values))) < DECADE]  # fmt: skip
    return "; ".join(notes)


def diagnose(runs: pd.DataFrame, fits: CurveFits, laws: Laws) -> Diagnostics:
    """Residuals and warnings of every power-law curve, joint law and D_T law fitted to the ok ``runs``."""
    pts = downstream_points(runs)
    pts = pts[pts["stage"].isin(["finetune", "scratch"])]
    frames, warnings = [], {}

    def add(fit: str, key: tuple, columns: list[str], rows: pd.DataFrame, x: str, observed: str,
            predicted: np.ndarray, warning: str) -> None:  # fmt: skip
        obs = rows[observed].to_numpy(float)
        frames.append(pd.DataFrame({"fit": fit, "group": key_text(columns, key), "stage": rows["stage"].to_numpy(),
                                    "id": rows["id"].to_numpy(), "n_params": rows["n_params"].to_numpy(float),
                                    "x": rows[x].to_numpy(float), "observed": obs, "predicted": predicted,
                                    "log_residual": np.log(obs) - np.log(predicted)}))  # fmt: skip
        warnings[(fit, label_key(key))] = warning

    for key, rows in curves(pts, fits.key_columns):
        fit = fits.fits.get(label_key(key))
        if fit is not None:
            add("power_law", key, fits.key_columns, rows, N, ERR, fit.predict(rows[N].to_numpy(float)),
                fit_warning({"b": (fit.b, 0.0, B_MAX)}, {"N": rows[N].to_numpy(float)}))
    group = laws.group_columns
    for key, rows in curves(pts, group):
        law = laws.fits.get(("joint", label_key(key)))
        if law is not None:
            p, n = rows["n_params"].to_numpy(float), rows[N].to_numpy(float)
            add("joint", key, group, rows, N, ERR, law["E"] + law["A"] * p ** -law["a"] + law["B"] * n ** -law["b"],
                fit_warning({"a": (law["a"], 0.0, B_MAX), "b": (law["b"], 0.0, B_MAX)}, {"P": p, "N": n}))
    used = laws.points[laws.points["use"] == "ok"].assign(stage="finetune")
    for key, rows in curves(used, group):
        law = laws.fits.get(("data_transferred", label_key(key)))
        if law is not None:
            d_f, p = rows["d_f"].to_numpy(float), rows["n_params"].to_numpy(float)
            beta = law["beta"] if np.isfinite(law["beta"]) else 0.0
            bound = float(LINEAR_BOUND[1])
            spans = {"D_F": d_f, **({"P": p} if np.isfinite(law["beta"]) else {})}
            add("data_transferred", key, group, rows, "d_f", "d_t", law["k"] * d_f ** law["alpha"] * p**beta,
                fit_warning({"alpha": (law["alpha"], -bound, bound), "beta": (law["beta"], -bound, bound)}, spans))
    residuals = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=RESIDUAL_COLUMNS)
    return Diagnostics(residuals, warnings)
