"""Claims: every number a reading may quote, computed from the runs, each with its interval, what that interval is,
the runs it rests on and the text a reading should quote (``claims_table``; ``claims_for`` from a sweep folder).

Ids are stable: ``<quantity>.<curve>[.n<N>]`` where a curve is ``<system>.<shift>.w<width>m<modes>`` (in a sweep
over model families ``<system>.<shift>.<family>``, then ``w<width>m<modes>`` where the family has them), then
``pre-<system>`` when pretrained on another system than the downstream one, the pretraining strategy unless it is
supervised, and ``<axis>-<value>`` for every other varied axis (``curve_id``). The quantities:

- ``err.<stage>.<curve>.n<N>``: mean test error over seeds at N (fine-tuned, scratch); ``err.zeroshot.<curve>``;
  intervals over seeds (``intervals.seed_interval``: t from 3 seeds on, the range over 2).
- ``gain.<curve>.n<N>``: scratch / fine-tuned mean error at N (``intervals.ratio_interval``).
- ``mult.<curve>.n<N>`` and ``multfit.<curve>.n<N>``: the measured and the fit-based data-efficiency multipliers
  (``analysis.multipliers``); ``b.<stage>.<curve>`` and ``c.<stage>.<curve>``: the fitted exponent and floor;
  ``law.<law>.<param>.<group>``: the transfer laws' parameters.
- ``popt.<stage>.<group>.c1e<k>``: the compute-optimal model size P* at a compute of 10^k FLOPs, from the joint law
  (``analysis.optimal.decade_optima``: every power of ten within the group's computes), a fine-tuned group's also as
  ``popt_amortised.`` and ``popt_full.`` with its pretraining counted.
- Counts, displayed "k of n": ``step0.n<N>`` (fine-tunings whose best validation was the loaded weights),
  ``budget.<stage>.n<N>`` (budget-limited runs), ``edge.<param>.<stage>.<lower|upper>`` (tuned points at the edge of
  their search space), ``holdout.<fit>`` (held-out predictions their interval covered).

``display`` is the value rounded to what its interval supports (``multipliers.round_to_interval``) with the
interval, and what the interval is when it is not a 95 % one. How readings quote claims, and the check that they
quote them faithfully: ``check_readings`` below.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.compute import run_compute
from analysis.curves import ERR, FIT_COLUMNS, IMPROVING, CurveFits, N, curves, downstream_points, fit_curves, pairs
from analysis.holdout import holdout_table
from analysis.intervals import is_95, ratio_interval, seed_interval
from analysis.laws import Laws, fit_laws
from analysis.load import load_runs
from analysis.multipliers import round_to_interval, small_n_multipliers, supported_place
from analysis.optimal import decade_optima
from analysis.protocol import edge_points

COLUMNS = ["id", "quantity", "value", "lo", "hi", "ci", "runs", "ref", "display"]
COUNT = "count"  # the ``ci`` of a count: exact, no interval
OPTIMUM = {"training": "popt", "pretraining amortised": "popt_amortised", "pretraining in full": "popt_full"}
_UNSAFE = re.compile(r"[^a-z0-9_+-]+")


def claims_for(sweep_dir: Path, *, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """The claims table of the sweep in ``sweep_dir``, as ``harness report`` writes it to claims.csv (same fits, same
    seeds), without drawing anything."""
    loaded = load_runs(Path(sweep_dir))
    runs = loaded.ok
    fits = fit_curves(runs, n_boot=n_boot, seed=seed)
    laws = fit_laws(runs, fits, n_boot=n_boot, seed=seed)
    multipliers = small_n_multipliers(runs, fits, n_boot=n_boot, seed=seed)
    compute = run_compute(runs, loaded.plan.jobs if loaded.plan else [])
    optima = decade_optima(downstream_points(runs).merge(compute, on="id"), laws.fits, laws.group_columns)
    return claims_table(runs, fits, laws, multipliers, holdout_table(runs, fits, laws, n_boot=n_boot, seed=seed),
                        optima)  # fmt: skip


def claims_table(runs: pd.DataFrame, fits: CurveFits, laws: Laws, multipliers: pd.DataFrame,
                 holdout: pd.DataFrame, optima: pd.DataFrame | None = None) -> pd.DataFrame:  # fmt: skip
    """Every claim of the sweep (COLUMNS), sorted by id; ``runs`` are its ok runs, the rest what the report computed
    from them (``optima``: ``analysis.optimal.decade_optima``'s table, none when not given)."""
    pts = downstream_points(runs)
    rows = _errors(pts, fits.key_columns) + _gains(pts, fits.key_columns) + _multipliers(multipliers, fits)
    rows += _fitted(fits) + _laws(laws) + _counts(runs, holdout)
    rows += [] if optima is None else optimum_claims(optima, laws.group_columns)
    table = pd.DataFrame(rows, columns=COLUMNS)
    duplicated = table["id"].duplicated(keep=False)
    if duplicated.any():
        raise AssertionError(f"claim ids are not unique: {sorted(set(table.loc[duplicated, 'id']))}")
    return table.sort_values("id", kind="stable").reset_index(drop=True)


def fit_claims(fits: CurveFits, multipliers: pd.DataFrame) -> pd.DataFrame:
    """The claims that rest on the curve fits and the multipliers alone (``b.``, ``c.``, ``mult.``, ``multfit.``), as
    ``claims_table`` writes them, without fitting the laws or counting: for a caller that refits often
    (``analysis.suggest_check``)."""
    return pd.DataFrame(_multipliers(multipliers, fits) + _fitted(fits), columns=COLUMNS)


def curve_id(values: dict, extra: list[str] = ()) -> str:
    """The id of a curve (or of a law's group, without a size) from its key values, named as in the fits table:
    system, shift, model family (where the runs name one), width, modes, pretrain_system, strategy, then the
    ``extra`` axes (another family's size keys among them)."""
    parts = [values["system"], values["shift"], *([values["arch"]] if "arch" in values else [])]
    size = "".join(f"{k[0]}{values[k]}" for k in ("width", "modes") if k in values and not pd.isna(values[k]))
    parts += [size] if size else []  # w16m8 for an FNO, w36 for an OFormer, nothing for a family without them
    psys, strategy = str(values.get("pretrain_system", "") or ""), str(values.get("strategy", "") or "")
    parts += [f"pre-{psys}"] if psys not in ("", str(values["system"])) else []
    parts += [strategy] if strategy not in ("", "supervised") else []
    parts += [f"{c.replace('.', '_')}-{values[c]}" for c in extra if str(values[c]) not in ("", "nan", "<NA>", "None")]
    return ".".join(_UNSAFE.sub("_", str(p).lower()).strip("_") for p in parts)


def display(value: float, lo: float, hi: float, ci: str, unit: str = "", runs: int = 0) -> str:
    """The text a reading quotes: "0.025 (0.024-0.026)" under a 95 % interval, "0.025 (range over 2 seeds:
    0.024-0.026)", "0.025 (0.01-0.04, not a 95 % interval)", "0.025" without an interval, "16 of 18" for a count
    (of ``runs``)."""
    if ci == COUNT:
        return f"{int(value)} of {int(runs)}"
    v, low, high = round_to_interval(value, lo, hi)
    if lo <= 0 <= value < 10.0 ** supported_place(value, lo, hi) / 2:  # a floor at its bound 0: not 4e-11
        v = "0"
    if math.isnan(lo) or math.isnan(hi):
        return f"{v}{unit}"
    span = f">={low}{unit}" if math.isinf(hi) else f"{low}{' to ' if lo < 0 else '-'}{high}{unit}"
    if is_95(ci):
        return f"{v}{unit} ({span})"
    if ci.startswith("range over"):
        return f"{v}{unit} ({ci}: {span})"
    return f"{v}{unit} ({span}, not a 95 % interval)"


def claim(cid: str, quantity: str, value: float, lo: float, hi: float, ci: str, runs: int, ref: str,
          unit: str = "") -> dict:  # fmt: skip
    """One row of a claims table (COLUMNS), its ``display`` made from the value, interval and ``unit``."""
    return {"id": cid, "quantity": quantity, "value": float(value), "lo": float(lo), "hi": float(hi), "ci": ci,
            "runs": int(runs), "ref": ref, "display": display(value, lo, hi, ci, unit, runs)}  # fmt: skip


def key_values(keys: list[str], key: tuple) -> dict:
    """A curve key as {fits-table column name: value}."""
    return {FIT_COLUMNS.get(c, c): v for c, v in zip(keys, key, strict=True)}


def ref_text(values: dict, n: float | None = None) -> str:
    """What a claim rests on, in words: "system poisson, shift id, ..., N 8"."""
    text = ", ".join(f"{k} {v}" for k, v in values.items() if str(v) != "")
    return text + (f", N {int(n)}" if n is not None else "")


def extra_axes(keys: list[str]) -> list[str]:
    """The key columns that enter a curve id as ``<axis>-<value>`` (``curve_id``'s ``extra``), by fits-table name."""
    return [FIT_COLUMNS.get(c, c) for c in keys if c not in FIT_COLUMNS]


def _errors(pts: pd.DataFrame, keys: list[str]) -> list[dict]:
    """Mean test error over seeds per curve and N (zero-shot: per curve)."""
    rows = []
    for key, g in curves(pts, keys):
        values = key_values(keys, key)
        stage, base = values["stage"], curve_id(values, extra_axes(keys))
        points = [(None, g)] if stage == "zeroshot" else list(g.groupby(N, sort=True))
        for n, at in points:
            err = at[ERR].to_numpy(float)
            lo, hi, basis = seed_interval(err)
            cid = f"err.{stage}.{base}" + ("" if n is None else f".n{int(n)}")
            rows.append(claim(cid, f"mean test error over seeds ({stage})", err.mean(), lo, hi, basis.label, len(err),
                               ref_text(values, n)))  # fmt: skip
    return rows


def _gains(pts: pd.DataFrame, keys: list[str]) -> list[dict]:
    """Scratch / fine-tuned mean error at every N both curves have."""
    rows = []
    for ft, sc in pairs(pts, keys):
        values = key_values(keys, tuple(ft[keys].iloc[0]))
        base = curve_id(values, extra_axes(keys))
        for n, at in ft.groupby(N, sort=True):
            scratch = sc.loc[sc[N] == n, ERR].to_numpy(float)
            if len(scratch) == 0:
                continue
            tuned = at[ERR].to_numpy(float)
            lo, hi, basis = ratio_interval(scratch, tuned)
            rows.append(claim(f"gain.{base}.n{int(n)}", "scratch / fine-tuned mean test error",
                               scratch.mean() / tuned.mean(), lo, hi, basis.label, len(scratch) + len(tuned),
                               ref_text(values, n), "x"))  # fmt: skip
    return rows


def _multipliers(table: pd.DataFrame, fits: CurveFits) -> list[dict]:
    """The measured and the fit-based multipliers of the multipliers table."""
    rows = []
    names = [FIT_COLUMNS.get(c, c) for c in fits.key_columns if c != "stage"]
    for record in table.to_dict("records"):
        values = {c: record[c] for c in names}
        base, ref = curve_id(values, extra_axes(fits.key_columns)), ref_text(values, record["N"])
        runs = int(record["runs_per_n"])
        if np.isfinite(record["multiplier_interp"]):
            rows.append(claim(f"mult.{base}.n{record['N']}", "data-efficiency multiplier, measured (interpolated)",
                               record["multiplier_interp"], record["interp_lo"], record["interp_hi"],
                               record["interp_ci"], runs, ref, "x"))  # fmt: skip
        if np.isfinite(record["multiplier_fit"]):
            notes = ("extrapolated" if record["fit_extrapolated"] else "", record["note"])
            note = "".join(f"; {t}" for t in notes if t)
            rows.append(claim(f"multfit.{base}.n{record['N']}", f"data-efficiency multiplier from the fits{note}",
                               record["multiplier_fit"], record["fit_lo"], record["fit_hi"], record["fit_ci"], runs,
                               ref, "x"))  # fmt: skip
    return rows


def _fitted(fits: CurveFits) -> list[dict]:
    """Each curve's exponent b and, where fitted, its floor c."""
    rows = []
    keys = [FIT_COLUMNS.get(c, c) for c in fits.key_columns]
    for record in fits.table.to_dict("records"):
        values = {c: record[c] for c in keys}
        base = f"{record['stage']}.{curve_id(values, extra_axes(fits.key_columns))}"
        few = "; fewer distinct N than the law's form needs" if record["few_n"] else ""
        for name in ("b", "c") if record["offset"] else ("b",):
            rows.append(claim(f"{name}.{base}", f"fitted {'exponent b' if name == 'b' else 'floor c'}{few}",
                               record[name], record[f"{name}_lo"], record[f"{name}_hi"], record["ci"],
                               record["n_points"], ref_text(values)))  # fmt: skip
    return rows


def _laws(laws: Laws) -> list[dict]:
    """Every parameter of every transfer law."""
    rows = []
    group = [FIT_COLUMNS.get(c, c) for c in laws.group_columns]
    for record in laws.table.to_dict("records"):
        if not np.isfinite(record["value"]):
            continue
        values = {c: record[c] for c in group}
        gid = f"{record['stage']}.{curve_id(values, extra_axes(laws.group_columns))}"
        rows.append(claim(f"law.{record['law']}.{record['param']}.{gid}", f"{record['law']} law: {record['param']}",
                           record["value"], record["lo"], record["hi"], record["ci"], record["n_points"],
                           ref_text(values)))  # fmt: skip
    return rows


def optimum_id(values: dict, group_columns: list[str], counting: str, compute: float) -> str:
    """The id of P* at ``compute`` (a power of ten) under ``counting`` of the joint law's group of these key values
    (by fits-table name), e.g. ``popt.scratch.poisson.id.c1e11``."""
    gid = f"{values['stage']}.{curve_id(values, extra_axes(group_columns))}"
    return f"{OPTIMUM[counting]}.{gid}.c1e{round(math.log10(compute))}"


def optimum_claims(table: pd.DataFrame, group_columns: list[str]) -> list[dict]:
    """The P* claims (COLUMNS) of ``decade_optima``'s table: P* with its interval at every compute."""
    rows = []
    names = [FIT_COLUMNS.get(c, c) for c in group_columns]
    for record in table[np.isfinite(table["P_opt"].astype(float))].to_dict("records"):
        values = {c: record[c] for c in names}
        note = "; extrapolated beyond the sampled P or N" if record["extrapolated"] else ""
        rows.append(claim(optimum_id(values, group_columns, record["counting"], record["compute"]),
                          f"compute-optimal model size P* (parameters; {record['counting']} counted){note}",
                          record["P_opt"], record["P_lo"], record["P_hi"], record["ci"], record["n_points"],
                          f"{ref_text(values)}, compute {record['compute']:.0e} FLOPs"))  # fmt: skip
    return rows


def _counts(runs: pd.DataFrame, holdout: pd.DataFrame) -> list[dict]:
    """Counts over runs: fine-tunings best at step 0 per N, budget-limited runs per stage and N, tuned points at an
    edge of their search space, held-out predictions covered."""
    rows = []
    down = runs[runs["stage"].isin(["finetune", "scratch"]) & runs[N].notna()]
    if "best_step" in down:
        for n, g in down[down["stage"] == "finetune"].groupby(N, sort=True):
            steps = pd.to_numeric(g["best_step"], errors="coerce").dropna()
            rows.append(_count(f"step0.n{int(n)}", "fine-tunings whose best validation was at step 0",
                               (steps == 0).sum(), len(steps), f"fine-tuned runs, N {int(n)}"))  # fmt: skip
    if IMPROVING in down and down[IMPROVING].notna().any():
        for (stage, n), g in down[down[IMPROVING].notna()].groupby(["stage", N], sort=True):
            rows.append(_count(f"budget.{stage}.n{int(n)}", "budget-limited runs", g[IMPROVING].astype(bool).sum(),
                               len(g), f"{stage} runs, N {int(n)}"))  # fmt: skip
    for (param, stage), g in edge_points(runs).groupby(["param", "stage"], sort=True):
        for edge in ("lower", "upper"):
            rows.append(_count(f"edge.{param}.{stage}.{edge}", f"tuned points at the {edge} end of the {param} space",
                               (g["edge"] == edge).sum(), len(g), f"{stage} tuned runs"))  # fmt: skip
    for fit, g in holdout[holdout["covered"].notna()].groupby("fit", sort=True):
        rows.append(_count(f"holdout.{fit.replace(' ', '_')}", f"held-out predictions covered ({fit})",
                           g["covered"].astype(bool).sum(), len(g), "holdout.csv"))  # fmt: skip
    return rows


def _count(cid: str, quantity: str, k: int, n: int, ref: str) -> dict:
    return claim(cid, quantity, int(k), math.nan, math.nan, COUNT, n, ref)


# How readings quote claims (see ``check_readings``).
MARKER = re.compile(r"<!--\s*claim:\s*([A-Za-z0-9_.+-]+?)(?:#(lo|hi))?\s*-->")
READINGS = re.compile(r"<!--\s*readings\s*-->(.*?)<!--\s*/readings\s*-->", re.S)
NUMBER = re.compile(
    r"(?<![\w.,])(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(?:[eE]([-+]?\d+))?([KM])?(?=x(?![A-Za-z])|[^\w]|$)"
)  # 16, 0.025, 2,048, 1e-3, 17K; not inside a word (L2, w16m8, 2D)
_UNIT = re.compile(r"\s?(?:x|×|%)?\s*")  # what may stand between a number and its marker
_DESIGN = re.compile(r"\bN\s*(?:=|<=|>=|<|>|≤|≥)\s*$")  # "N = 8": a sample count of the design, not a measurement
_SHOWN = re.compile(r"\d[\d,.]*(?:[eE][-+]?\d+)?[KM]?x?\s\([^()\n]*\)$")  # "value (interval)" as a display writes it
_HIDDEN = re.compile(r"<!--.*?-->|`[^`\n]*`|\]\([^)\n]*\)", re.S)  # comments, inline code, link targets


def check_readings(markdown_text: str, claims: pd.DataFrame) -> list[str]:
    """Every problem with how ``markdown_text`` quotes ``claims`` (a claims table), one line each; [] when none.

    A reading quotes a claim by a marker right after the number: ``16x<!--claim:gain.poisson.id.w16m8.n8-->``
    (``#lo`` / ``#hi`` after the id quote the interval's ends), or right after the claim's whole ``display`` text
    ("16 of 18<!--claim:step0.n8-->"). A marked number must equal the claim at the precision it is written with
    (16x for 15.6) and may not be written more finely than the claim's interval supports
    (``multipliers.supported_place``; a count exactly). Between ``<!-- readings -->`` and ``<!-- /readings -->``
    every number must be marked, except sample counts of the design written "N = 8" (or N <=, >=, <, >) and
    numbers in inline code or link targets.
    """
    table = claims.set_index("id")
    hidden = _HIDDEN.sub(lambda m: " " * len(m.group()), markdown_text)
    numbers = {m.start(): m for m in NUMBER.finditer(hidden)}
    covered: set[int] = set()
    problems = []
    for marker in MARKER.finditer(markdown_text):
        where = f"line {markdown_text.count(chr(10), 0, marker.start()) + 1}"
        cid, end = marker.group(1), marker.group(2)
        number = max((m for m in numbers.values() if m.end() <= marker.start()), key=lambda m: m.end(), default=None)
        if number is not None and not _UNIT.fullmatch(hidden[number.end() : marker.start()]):
            number = None
        covered |= {number.start()} if number is not None else set()
        if cid not in table.index:
            problems.append(f"{where}: unknown claim {cid}")
            continue
        claim = table.loc[cid]
        before = hidden[: marker.start()].rstrip()
        shown = _SHOWN.search(before) if end is None else None
        if end is None and before.endswith(str(claim["display"])):
            covered |= {s for s in numbers if len(before) - len(str(claim["display"])) <= s < len(before)}
        elif shown is not None:  # a display-shaped quote, "0.0082 (0.0063-0.0081)", that is not the claim's
            covered |= {s for s in numbers if shown.start() <= s < len(before)}
            quoted = shown.group().strip()
            problems.append(f"{where}: {cid} is quoted as \"{quoted}\", the runs give \"{claim['display']}\"")
        elif number is None:
            problems.append(f"{where}: the marker of {cid} follows no number")
        else:
            problems += [f"{where}: {p}" for p in _check_number(number, claim, cid, end)]
    for region in READINGS.finditer(markdown_text):
        for start, m in numbers.items():
            design = _DESIGN.search(hidden[max(0, start - 8) : start])
            if region.start(1) <= start < region.end(1) and start not in covered and not design:
                line = markdown_text.count("\n", 0, start) + 1
                problems.append(f"line {line}: {m.group()} in a reading quotes no claim (mark it <!--claim:ID-->)")
    return problems


def _check_number(number: re.Match, claim: pd.Series, cid: str, end: str | None) -> list[str]:
    """Whether a quoted number equals its claim (``end``: the interval's lo or hi) at its own precision, and whether
    that precision is one the claim's interval supports."""
    quoted, place = _parse(number)
    target = float(claim[end or "value"])
    text = f"{number.group()} for {cid}{'#' + end if end else ''} ({claim['display']})"
    if not math.isfinite(target):
        return [f"{text}: the claim has no {end or 'value'}"]
    if abs(quoted - target) > 0.5 * 10.0**place * (1 + 1e-9):
        return [f"{text}: does not match {target:.6g} at the precision it is written with"]
    if claim["ci"] == COUNT:
        allowed = 0  # a count is exact
    else:
        allowed = supported_place(float(claim["value"]), float(claim["lo"]), float(claim["hi"]))
        allowed = min(allowed, math.floor(math.log10(abs(target)))) if target else allowed
    if place < allowed:
        return [f"{text}: written to 1e{place}, finer than its interval supports (1e{allowed})"]
    return []


def _parse(number: re.Match) -> tuple[float, int]:
    """A quoted number's value and the decimal place (power of 10) of its last significant digit; an integer's
    trailing zeros are not significant (1,000 is quoted to the thousands)."""
    digits, decimals, exponent, suffix = number.groups()
    digits = digits.replace(",", "")
    shift = int(exponent or 0) + {"K": 3, "M": 6}.get(suffix or "", 0)
    place = -len(decimals) if decimals else len(digits) - len(digits.rstrip("0")) if digits.strip("0") else 0
    return float(f"{digits}.{decimals or 0}") * 10.0**shift, place + shift
