"""Held-out extrapolation: refit every fit without what it would extrapolate to, predict what was left out, and say
whether the prediction interval covered it.

- A power-law curve is refitted without its largest N (by the same rule as every curve: ``curves.fit_curve``, so a
  curve of 4 distinct N is refitted on 3, without its floor) and predicts the error at that N.
- The joint law err(P, N) is refitted without its largest N and, separately, without its largest model; it predicts
  the errors at the left-out N (every size) or the left-out size (every N).
- The effective-data law D_T = k D_F^alpha P^beta is refitted without its largest D_F and, where it spans three sizes
  or more, without its largest model, and predicts D_T there (each run's D_T read from its scratch curve as before).

The observed value at a left-out point is the geometric mean of its S runs (the fits are of log errors). The
prediction interval reads the refit's bootstrap resamples: each resample's prediction plus a draw of the noise of a
mean of S runs at that resample's own noise scale, sigma_b z / sqrt(S) (``PowerLawFit.sigma``, ``LawFit.sigma``). So
it holds the observed mean's noise as well as the parameters' uncertainty, is read at the refit's level and carries
the refit's label (``analysis.intervals``); ``covered`` is empty where there is no interval. A refit draws at most
HOLDOUT_BOOT resamples: each end of a 95 % interval still rests on 10 of them, enough to say whether it covered,
and the joint law's refits (twice per group) would otherwise cost more than every other fit of the report.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.curves import ERR, CurveFits, N, curves, downstream_points, fit_curve, key_text, label_key
from analysis.intervals import NONE, Basis, interval
from analysis.laws import Laws
from analysis.load import ReportError
from analysis.robust import seed_for
from analysis.transfer import JOINT_MIN_SIZES, fit_joint, fit_transfer

HOLDOUT_BOOT = 400  # resamples per refit (see the module docstring)
COLUMNS = ["fit", "group", "held_out", "n_params", "N", "runs", "observed", "predicted", "lo", "hi", "ci", "covered",
           "ratio"]  # fmt: skip


def holdout_table(runs: pd.DataFrame, fits: CurveFits, laws: Laws, *, n_boot: int = 1000, seed: int = 0
                  ) -> pd.DataFrame:  # fmt: skip
    """One row per left-out point of every fit that can be refitted without it (COLUMNS): the fit ("power law" or
    the law's name), its group, what was held out, the point (``n_params``, ``N``: D_F for the effective-data law),
    how many runs it has, the observed geometric mean, the refit's prediction, its interval and label, whether the
    interval covered the observation, and observed / predicted."""
    n_boot = min(n_boot, HOLDOUT_BOOT)
    rows = _curves(runs, fits, n_boot, seed) + _joint(runs, laws, n_boot, seed) + _transfer(laws, n_boot, seed)
    return pd.DataFrame(rows, columns=COLUMNS)


def _curves(runs: pd.DataFrame, fits: CurveFits, n_boot: int, seed: int) -> list[dict]:
    pts = downstream_points(runs)
    rows = []
    for key, g in curves(pts[pts["stage"] != "zeroshot"], fits.key_columns):
        label = label_key(key)
        n_max = g[N].max()
        train = g[g[N] < n_max]
        if label not in fits.fits or train[N].nunique() < 2:
            continue
        refit = fit_curve(train, n_boot=n_boot, seed=seed_for(seed, ("holdout", *label)))
        left = g[g[N] == n_max]
        log_pred = np.log(refit.boot[:, :1] * float(n_max) ** -refit.boot[:, 1:2] + refit.boot[:, 2:])[:, 0]
        rows.append(_row("power law", key_text(fits.key_columns, key), "largest N", float(left["n_params"].mean()),
                         float(n_max), left[ERR].to_numpy(float), float(np.log(refit.predict(n_max))), log_pred,
                         refit.sigma, refit.basis, seed_for(seed, ("holdout noise", *label))))  # fmt: skip
    return rows


def _joint(runs: pd.DataFrame, laws: Laws, n_boot: int, seed: int) -> list[dict]:
    pts = downstream_points(runs)
    trained = pts[pts["stage"].isin(["finetune", "scratch"])]
    rows = []
    for key, g in curves(trained, laws.group_columns):
        if ("joint", label_key(key)) not in laws.fits:
            continue
        for held, column in (("largest N", N), ("largest model", "n_params")):
            train, left = g[g[column] < g[column].max()], g[g[column] == g[column].max()]
            if min(train["n_params"].nunique(), train[N].nunique()) < JOINT_MIN_SIZES:
                continue
            tag = ("holdout joint", held, *label_key(key))
            law = fit_joint(train["n_params"], train[N], train[ERR], n_boot=n_boot, seed=seed_for(seed, tag),
                            groups=train["seed"])  # fmt: skip
            for (p, n), at in left.groupby(["n_params", N], sort=True):
                e, a_coef, a, b_coef, b = (np.append(law.values[i], law.boot[:, i]) for i in range(5))
                log_pred = np.log(e + a_coef * float(p) ** -a + b_coef * float(n) ** -b)
                rows.append(_row("joint", key_text(laws.group_columns, key), held, float(p), float(n),
                                 at[ERR].to_numpy(float), log_pred[0], log_pred[1:], law.sigma, law.basis,
                                 seed_for(seed, (*tag, str(p), str(n)))))  # fmt: skip
    return rows


def _transfer(laws: Laws, n_boot: int, seed: int) -> list[dict]:
    rows = []
    points = laws.points
    for key, g in curves(points, laws.group_columns):
        if ("data_transferred", label_key(key)) not in laws.fits:
            continue
        ok = g[g["use"] == "ok"]
        for held, column in (("largest D_F", "d_f"), ("largest model", "n_params")):
            if column == "n_params" and ok["n_params"].nunique() < 3:
                continue  # the refit would see a single size: beta unfitted, nothing to predict the size with
            train, left = g[g[column] < ok[column].max()], ok[ok[column] == ok[column].max()]
            tag = ("holdout transfer", held, *label_key(key))
            boot_dt = laws.boot_dt[:n_boot, train.index] if len(laws.boot_dt) else None
            try:
                law = fit_transfer(train["d_f"], train["n_params"], train["d_t"].where(train["use"] == "ok"),
                                   d_t_boot=boot_dt, n_boot=0 if boot_dt is None else len(boot_dt),
                                   seed=seed_for(seed, tag), groups=train["seed"])  # fmt: skip
            except ReportError:
                continue
            for (p, d_f), at in left.groupby(["n_params", "d_f"], sort=True):
                k, alpha, beta = (np.append(law.values[i], law.boot[:, i]) for i in range(3))
                log_pred = np.log(k) + alpha * np.log(d_f) + np.nan_to_num(beta) * np.log(p)
                rows.append(_row("data_transferred", key_text(laws.group_columns, key), held, float(p), float(d_f),
                                 at["d_t"].to_numpy(float), log_pred[0], log_pred[1:], law.sigma, law.basis,
                                 seed_for(seed, (*tag, str(p), str(d_f)))))  # fmt: skip
    return rows


def _row(kind: str, group: str, held: str, p: float, n: float, observed: np.ndarray, log_pred: float,
         boot_pred: np.ndarray, sigma: np.ndarray, basis: Basis, seed: int) -> dict:  # fmt: skip
    """A table row: the observed geometric mean of ``observed`` against the prediction, with the interval of the
    resamples' predictions (``boot_pred``, log) plus the noise of a mean of as many runs (``sigma`` per resample)."""
    obs = float(np.exp(np.mean(np.log(observed))))
    z = np.random.default_rng(seed).standard_normal(len(boot_pred))
    lo, hi = np.exp(interval(boot_pred + sigma[: len(boot_pred)] * z / np.sqrt(len(observed)), basis))
    covered = bool(lo <= obs <= hi) if basis.kind != NONE and np.isfinite(lo) else None
    pred = float(np.exp(log_pred))
    return {"fit": kind, "group": group, "held_out": held, "n_params": int(round(p)), "N": n, "runs": len(observed),
            "observed": obs, "predicted": pred, "lo": float(lo), "hi": float(hi), "ci": basis.label,
            "covered": covered, "ratio": obs / pred}  # fmt: skip
