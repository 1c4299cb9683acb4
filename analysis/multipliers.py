"""Data-efficiency multipliers at small N with their bootstrap intervals, and numbers rounded to what an interval
supports.

At each of the fine-tuned curve's SMALL_N smallest N the multiplier is n_scratch / N at the fine-tuned mean error:

- measured: log-log interpolation between the sampled N of both curves (nan outside them). Its interval draws the
  mean error at every N of both curves from a t distribution (``analysis.intervals.mean_draws``: the spread over
  seeds within N, pooled over each curve's N); with a single run at every N there is no interval.
- fit: from the fitted power laws (extrapolated when scratch needs more samples than its largest sampled N, or
  fewer than its smallest). Its interval pairs the curves' bootstrap fits (``PowerLawFit.boot``).

Each interval carries its label (``analysis.intervals.Basis``: a 95 % interval or what it is instead). A resample in
which scratch never reaches the target counts as an infinite multiplier (the interval is then open above); one in
which scratch at its smallest N is already better counts as 0. ``floor_near_target`` flags a fit-based multiplier
whose target is within the interval of a fitted floor c (either curve's): n_for, and with it the multiplier, then
hangs on where exactly the floor lies.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analysis.curves import ERR, FIT_COLUMNS, CurveFits, N, downstream_points, label_key, pairs, primary
from analysis.intervals import NONE, combine, interval, is_95, mean_draws
from analysis.powerlaw import PowerLawFit, curve_means, efficiency_multiplier, interp_n_for
from analysis.robust import seed_for

SMALL_N = 2  # multipliers are reported at the fine-tuned curve's this many smallest N


def small_n_multipliers(runs: pd.DataFrame, fits: CurveFits, *, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """One row per (matched curve pair, N among the fine-tuned curve's SMALL_N smallest).

    Columns: the curve key, ``n_params``, ``N``, ``err_finetune`` (mean over runs), ``multiplier_interp`` with
    ``interp_lo``/``interp_hi``, ``interp_ci`` (the interval's label) and ``runs_per_n`` (fewest runs at any N of the
    two curves), ``multiplier_fit`` with ``fit_lo``/``fit_hi``/``fit_ci``, ``n_scratch_fit``, ``fit_extrapolated``,
    ``floor_near_target`` and ``note``.
    """
    rows = []
    for ft, sc in pairs(primary(downstream_points(runs)), fits.key_columns):
        rng = np.random.default_rng(seed_for(seed, ("multiplier", *label_key(tuple(ft[fits.key_columns].iloc[0])))))
        nu_f, mean_f, boot_f, basis_f, runs_f = _mean_draws(ft, n_boot, rng)
        nu_s, mean_s, boot_s, basis_s, runs_s = _mean_draws(sc, n_boot, rng)
        basis = combine(basis_f, basis_s)
        fit_f, fit_s = fits.get(ft), fits.get(sc)
        for j, (n, target) in enumerate(zip(nu_f[:SMALL_N], mean_f[:SMALL_N], strict=False)):
            interp = float(interp_n_for(nu_s, mean_s, target) / n)
            lo, hi = (np.nan, np.nan)
            if basis.kind != NONE and np.isfinite(interp):
                t = boot_f[:, j]
                lo, hi = interval(_open(interp_n_for(nu_s, boot_s, t), boot_s, t) / n, basis)
            fitted = _fit_multiplier(fit_s, fit_f, target, float(sc[N].min()), float(sc[N].max()))
            rows.append({
                **{FIT_COLUMNS.get(c, c): ft[c].iloc[0] for c in fits.key_columns if c != "stage"},
                "n_params": int(round(ft["n_params"].mean())), "N": int(n), "err_finetune": float(target),
                "multiplier_interp": interp, "interp_lo": lo, "interp_hi": hi, "interp_ci": basis.label,
                "runs_per_n": int(min(runs_f.min(), runs_s.min())), **fitted,
            })  # fmt: skip
    return pd.DataFrame(rows)


def _mean_draws(rows: pd.DataFrame, n_boot: int, rng: np.random.Generator) -> tuple:
    """Sorted distinct N, the mean error at each, (n_boot, m) draws of those means (``mean_draws``) with their
    basis, and the number of runs at each N."""
    n, err = rows[N].to_numpy(float), rows[ERR].to_numpy(float)
    n_u, means = curve_means(n, err)
    values = [err[n == v] for v in n_u]
    draws, basis = mean_draws(values, n_boot, rng)
    return n_u, means, draws, basis, np.array([len(v) for v in values])


def _open(n_s: np.ndarray, means: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Interpolated scratch n with its nan made explicit: inf where scratch never got down to the target, 0 where it
    was already below it at its smallest N."""
    never = t < means.min(-1)
    return np.where(np.isnan(n_s), np.where(never, np.inf, 0.0), n_s)


def _fit_multiplier(fit_s: PowerLawFit | None, fit_f: PowerLawFit | None, target: float, n_min: float,
                    n_max: float) -> dict:  # fmt: skip
    """The fit-based multiplier at ``target``, its interval over paired bootstrap fits and its label, whether it
    extrapolates, and whether it rests on a floor near the target."""
    if fit_s is None or fit_f is None:
        return {"multiplier_fit": np.nan, "fit_lo": np.nan, "fit_hi": np.nan, "fit_ci": "no fit",
                "n_scratch_fit": np.nan, "fit_extrapolated": False, "floor_near_target": False, "note": ""}  # fmt: skip
    n_s = float(fit_s.n_for(target))
    boots = [_boot_n_for(f.boot, target) for f in (fit_s, fit_f)]
    k = min(len(boots[0]), len(boots[1]))
    basis = combine(fit_s.basis, fit_f.basis)
    with np.errstate(invalid="ignore"):  # inf / inf: both fits unreachable, left out
        ratio = np.where(np.isnan(boots[0][:k]), np.inf, boots[0][:k]) / boots[1][:k]
    lo, hi = interval(ratio, basis) if k else (np.nan, np.nan)
    notes = [floor_note(f, target, name) for f, name in ((fit_s, "scratch"), (fit_f, "fine-tuned"))]
    notes = [note for note in notes if note]
    return {"multiplier_fit": float(efficiency_multiplier(fit_s, fit_f, np.array([target]))[0]), "fit_lo": lo,
            "fit_hi": hi, "fit_ci": basis.label, "n_scratch_fit": n_s,
            "fit_extrapolated": bool(n_s > n_max or n_s < n_min), "floor_near_target": bool(notes),
            "note": "; ".join(notes)}  # fmt: skip


def floor_note(fit: PowerLawFit, target: float, name: str) -> str:
    """A note when the fitted floor c of ``fit`` lies within its own uncertainty of ``target`` (the target is at or
    below the upper end of c's interval; without an interval, whenever c > 0): how many samples reach the target then
    hangs on where exactly the floor lies. "" otherwise."""
    c_hi = fit.c_ci[1]
    if not fit.offset or (target > c_hi if np.isfinite(c_hi) else fit.c <= 0):
        return ""
    c = f"{fit.c:.3g}" if fit.c >= 1e-6 * target else "0"
    upper = f"interval up to {c_hi:.3g}" if np.isfinite(c_hi) else "no interval"
    return f"rests on the {name} fit's floor c = {c} ({upper}) near the target {target:.3g}"


def _boot_n_for(boot: np.ndarray, target: float) -> np.ndarray:
    """n at which each bootstrap fit (rows of a, b, c) reaches ``target``; nan where it never does."""
    a, b, c = boot[:, 0], boot[:, 1], boot[:, 2]
    ok = (target > c) & (b > 0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return np.where(ok, ((target - c) / a) ** (-1.0 / np.where(ok, b, 1.0)), np.nan)


def round_to_interval(value: float, lo: float, hi: float) -> tuple[str, str, str]:
    """``value``, ``lo`` and ``hi`` as text, rounded to the decimal place of the leading digit of the interval's
    half-width (140.3 in [112.7, 188.4] -> "140", "110", "190"); every number keeps at least one significant digit.

    An open upper end (``hi`` = inf) uses the lower half-width; without an interval (nan) the value keeps two
    significant digits. Infinite or nan numbers are written "inf" / "nan".
    """
    place = supported_place(value, lo, hi)
    return _rounded(value, place), _rounded(lo, place), _rounded(hi, place)


def supported_place(value: float, lo: float, hi: float) -> int:
    """The finest decimal place (as a power of 10) that the interval [lo, hi] supports for ``value``: that of the
    leading digit of its half-width (of value - lo when open above); without an interval, two significant digits of
    the value (three when the interval has no width)."""
    spread = (hi - lo) / 2 if math.isfinite(hi) else value - lo
    if math.isfinite(spread) and spread > 0:
        return math.floor(math.log10(spread) + 1e-9)  # (10.0 - 9.98) / 2 is 0.00999...: still the hundredths
    if math.isfinite(value) and value != 0:
        return math.floor(math.log10(abs(value))) - (1 if math.isnan(spread) else 2)
    return 0


def format_estimate(value: float, lo: float, hi: float, suffix: str = "x") -> str:
    """"~140x (110-190)": the value and its interval rounded by ``round_to_interval``; "(>=110)" when open above;
    the value alone ("~18x") without an interval."""
    v, low, high = round_to_interval(value, lo, hi)
    if math.isnan(lo) or math.isnan(hi):
        return f"~{v}{suffix}"
    return f"~{v}{suffix} (>={low})" if math.isinf(hi) else f"~{v}{suffix} ({low}-{high})"


def _rounded(x: float, place: int) -> str:
    """``x`` rounded to the decimal ``place`` (10^place), keeping one significant digit; 1e5 and above in e-notation."""
    if not math.isfinite(x):
        return str(x)
    if x == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(x)))
    place = min(place, magnitude)
    r = round(x, -place)
    if r != 0 and math.floor(math.log10(abs(r))) > magnitude:  # rounded up a decade (9.99 -> 10): one digit fewer
        place += 1
        r = round(x, -place)
    if abs(r) >= 1e5:
        return f"{r:.{max(0, math.floor(math.log10(abs(r))) - place)}e}"
    return f"{r:.{max(0, -place)}f}"


def multiplier_display(frame: pd.DataFrame) -> pd.DataFrame:
    """The multiplier table for reading: the measured (interpolated) multiplier first, then the fit-based one marked
    "extrapolated" where scratch's fit is read outside its sampled N; numbers rounded to what their intervals
    support, an interval that is not a 95 % one followed by what it is [in brackets], and the notes (a floor near the
    target)."""
    if frame.empty:
        return frame
    measured = [
        "outside the measured range" if np.isnan(m) else _with_label(format_estimate(m, lo, hi), label)
        for m, lo, hi, label in zip(frame["multiplier_interp"], frame["interp_lo"], frame["interp_hi"],
                                    frame["interp_ci"], strict=True)
    ]  # fmt: skip
    fitted = [
        "never reached by the scratch fit" if np.isnan(m) else
        _with_label(format_estimate(m, lo, hi) + (", extrapolated" if ex else ""), label)
        for m, lo, hi, ex, label in zip(frame["multiplier_fit"], frame["fit_lo"], frame["fit_hi"],
                                        frame["fit_extrapolated"], frame["fit_ci"], strict=True)
    ]  # fmt: skip
    keys = list(frame.columns[: list(frame.columns).index("multiplier_interp")])
    return frame[keys].assign(**{"measured (interpolated)": measured, "from the fits": fitted, "notes": frame["note"]})


def _with_label(text: str, label: str) -> str:
    """``text`` alone under a 95 % interval, else followed by what its interval is."""
    return text if is_95(label) else f"{text} [{label}]"
