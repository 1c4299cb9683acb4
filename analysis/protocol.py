"""The protocol a sweep used, stated from its summary rows (what the jobs resolved) and its plan's spec (what the
sweep file wrote), and the runs whose step budget limited them.

Validation rule: ``downstream.n_val_fraction`` f > 0 means n_val = max(``downstream.n_val_min``, ceil(f n_train)),
resolved at expand into ``downstream.n_val``; otherwise (or when the columns are absent, as in sweeps written before
the rule existed) n_val is the fixed ``downstream.n_val``. Training length: ``train.steps`` > 0 is a budget of
optimiser steps; otherwise ``train.epochs`` epochs, with at least ``train.min_steps`` steps when that is > 0.

Also stated: which variance the intervals over seeds include (``variance_line``: whether ``data_seed`` differs
between the seeds of a curve point), how small the validation sets are, and the tuned hyperparameters chosen at the
edge of their search space (``edge_points``), where a wider grid might have chosen otherwise.
"""

from __future__ import annotations

import json
import math

import pandas as pd

from analysis.curves import BASE_KEY, IMPROVING, N

DOWNSTREAM = ("finetune", "scratch")
TRAINED = ("pretrain", *DOWNSTREAM)  # the stages that train (a zero-shot run only evaluates)
RULE_KEYS = ("n_val", "n_val_fraction", "n_val_min", "steps", "min_steps", "epochs")
SMALL_VAL = 64  # validation sets below this many samples choose hyperparameters and best checkpoints noisily
EDGE_SHARE = 0.05  # a value from a continuous range within this share of its (log) width of an end is on its edge
EDGE_COLUMNS = ["id", "stage", "downstream.system", "downstream.shift", "model.width", "model.modes", "seed", N]
IMPROVING_COLUMNS = {
    "id": "id", "stage": "stage", "downstream.system": "system", "downstream.shift": "shift", "model.arch": "arch",
    "model.width": "width", "model.modes": "modes", "seed": "seed", N: "N", "train.lr": "lr",
    "best_step": "best step", "steps_run": "steps",
}  # fmt: skip


def protocol_lines(runs: pd.DataFrame, spec: dict | None) -> list[str]:
    """Sentences stating the validation rule and the training length of the downstream runs (and of the
    pretraining runs when there are any), then the rule keys as the sweep file wrote them."""
    down = runs[runs["stage"].isin(DOWNSTREAM)]
    lines = [f"Validation (fine-tuning and scratch): {validation_rule(down)}.", validation_sizes(down),
             f"Training length (fine-tuning and scratch): {length_rule(down, 'train')}.", variance_line(down)]
    lines += edge_lines(edge_points(runs))
    pre = runs[runs["stage"] == "pretrain"]
    if not pre.empty:
        n_val = _values(pre, "pretrain.n_val")
        lines.append(f"Pretraining: fixed n_val = {n_val or 'not recorded'}; {length_rule(pre, 'pretrain.train')}.")
    written = _written(spec or {})
    lines.append("As the sweep file writes them: " + ("; ".join(written) if written else "none of "
                 + ", ".join(RULE_KEYS) + " (defaults)") + ".")  # fmt: skip
    return lines


def validation_sizes(rows: pd.DataFrame) -> str:
    """The smallest and largest validation set of the downstream runs, and how many runs had fewer than SMALL_VAL."""
    n_val = pd.to_numeric(rows["downstream.n_val"], errors="coerce").dropna() if "downstream.n_val" in rows else []
    if len(n_val) == 0:
        return "Validation set sizes: not recorded."
    small = int((n_val < SMALL_VAL).sum())
    return (f"Validation set sizes: {n_val.min():g} to {n_val.max():g} samples; {small} of {len(n_val)} runs validated "
            f"on fewer than {SMALL_VAL} (their chosen hyperparameters and best checkpoints are noisier).")


def variance_line(rows: pd.DataFrame) -> str:
    """Which variance the intervals over seeds include, read from the runs' ``data_seed``: at each curve point (the
    runs of one curve at one N) with several seeds, whether the data seed differs between them (data draw and
    initialisation vary) or not (the initialisation alone)."""
    if "seed" not in rows or rows.empty:
        return "Variance over seeds: no seeds recorded."
    if "data_seed" not in rows or rows["data_seed"].isna().all():
        return "Variance over seeds: unknown (the runs do not record data_seed)."
    keys = [c for c in (*BASE_KEY, N) if c in rows]
    counts = rows.groupby(keys, dropna=False).agg(seeds=("seed", "nunique"), data=("data_seed", "nunique"))
    several = counts[counts["seeds"] > 1]
    if several.empty:
        return ("Variance over seeds: every curve point has a single seed; intervals rest on the runs' scatter about "
                "the fitted laws, not on repeated seeds.")  # fmt: skip
    follows, fixed = int((several["data"] == several["seeds"]).sum()), int((several["data"] == 1).sum())
    parts = [f"{follows} vary the data draw (which N training samples, and the validation and test samples) and the "
             "initialisation together (data_seed differs between their seeds)" if follows else "",
             f"{fixed} vary the initialisation alone (data_seed fixed: their intervals hold the data draw fixed)"
             if fixed else "", f"{len(several) - follows - fixed} share data seeds between some seeds"
             if len(several) > follows + fixed else ""]  # fmt: skip
    text = "; ".join(p for p in parts if p)
    return f"Variance over seeds: of {len(several)} curve points with several seeds, {text}."


def edge_points(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per tuned run (a tuning study's chosen trial) and tuned parameter: EDGE_COLUMNS present, ``param``,
    ``value``, the search space's ``low`` and ``high`` ends and ``edge`` ("lower", "upper" or "" inside)."""
    columns = [*(c for c in EDGE_COLUMNS if c in runs), "param", "value", "low", "high", "edge"]
    if "tune.spec" not in runs or "tune.params" not in runs:
        return pd.DataFrame(columns=columns)
    tuned = runs[runs["tune.spec"].notna() & runs["tune.params"].notna()]
    rows = []
    for record in tuned.to_dict("records"):
        chosen = json.loads(record["tune.params"])
        for param, space in json.loads(record["tune.spec"]).get("params", {}).items():
            low, high, edge = _edge(chosen.get(param), space)
            if low is not None:
                rows.append({**{c: record[c] for c in columns[:-5]}, "param": param, "value": chosen[param],
                             "low": low, "high": high, "edge": edge})  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def _edge(value: object, space: dict) -> tuple[float | None, float | None, str]:
    """(low end, high end, "lower" | "upper" | "") of a numeric ``value`` in its search ``space``; (None, None, "")
    when the space or the value is not numeric."""
    if space.get("kind") in ("grid", "choice"):
        values = [v for v in space.get("values", []) if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if len(values) < 2 or not isinstance(value, (int, float)):
            return None, None, ""
        low, high = min(values), max(values)
        return low, high, "lower" if value == low else "upper" if value == high else ""
    low, high = space.get("low"), space.get("high")
    if not all(isinstance(v, (int, float)) for v in (value, low, high)):
        return None, None, ""
    scale = math.log if space.get("kind") == "log_uniform" else float
    share = (scale(value) - scale(low)) / (scale(high) - scale(low))
    return low, high, "lower" if share <= EDGE_SHARE else "upper" if share >= 1 - EDGE_SHARE else ""


def edge_lines(points: pd.DataFrame) -> list[str]:
    """Per tuned parameter and stage: at how many of the tuned points it was chosen at each edge of its search
    space."""
    lines = []
    for (param, stage), g in points.groupby(["param", "stage"], sort=True):
        low, high = (", ".join(f"{v:g}" for v in sorted(g[end].unique())) for end in ("low", "high"))
        counts = {end: int((g["edge"] == end).sum()) for end in ("lower", "upper")}
        lines.append(f"Tuned {param} ({stage}): chosen at the lower end of its search space ({low}) at "
                     f"{counts['lower']} and at the upper end ({high}) at {counts['upper']} of {len(g)} tuned points; "
                     "a wider space might have chosen otherwise there.")  # fmt: skip
    return lines


def validation_rule(rows: pd.DataFrame) -> str:
    """The downstream validation rule of ``rows``: fraction with floor, or fixed count (one clause per rule used)."""
    if rows.empty:
        return "no fine-tuning or scratch runs"
    frac = _numeric(rows, "downstream.n_val_fraction")
    clauses = []
    for f, group in rows.groupby(frac, sort=True):
        if f > 0:
            floor = _values(group, "downstream.n_val_min") or "0"
            clauses.append(f"n_val = max(n_val_min, ceil(f n_train)) with f = {f:g} and n_val_min = {floor} "
                           "(downstream.n_val_fraction, downstream.n_val_min; resolved n_val per N below)")  # fmt: skip
        else:
            clauses.append(f"fixed n_val = {_values(group, 'downstream.n_val') or 'not recorded'} samples "
                           "(downstream.n_val)")  # fmt: skip
    return "; ".join(clauses)


def length_rule(rows: pd.DataFrame, prefix: str) -> str:
    """The training length of ``rows`` from ``<prefix>.steps``/``min_steps``/``epochs`` (absent: epochs only)."""
    steps = _numeric(rows, f"{prefix}.steps")
    clauses = []
    for s, group in rows.groupby(steps, sort=True):
        if s > 0:
            clauses.append(f"a budget of {int(s)} optimiser steps ({prefix}.steps; epochs follow from N and the batch "
                           "size)")  # fmt: skip
            continue
        text = f"{_values(group, f'{prefix}.epochs') or 'unrecorded'} epochs ({prefix}.epochs)"
        floor = _values(group[_numeric(group, f"{prefix}.min_steps") > 0], f"{prefix}.min_steps")
        clauses.append(text + (f", at least {floor} optimiser steps ({prefix}.min_steps)" if floor else ""))
    return "; ".join(clauses) or "no runs"


def per_n_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per downstream N (fine-tuning and scratch runs): runs, resolved n_val, steps and epochs run (min-max), how many
    runs were budget-limited ("unknown" when the runs do not record it) and how many fine-tunings had their best
    validation at step 0 (the loaded weights: fine-tuning did not improve on them)."""
    down = runs[runs["stage"].isin(DOWNSTREAM) & runs[N].notna()]
    rows = []
    for n, g in down.groupby(N, sort=True):
        known = g[IMPROVING].notna() if IMPROVING in g else pd.Series(False, g.index)
        rows.append({
            "N": int(n), "runs": len(g), "n_val": _values(g, "downstream.n_val") or "-",
            "steps run": _span(g, "steps_run"), "epochs run": _span(g, "epochs_run"),
            "budget-limited": f"{int(g.loc[known, IMPROVING].astype(bool).sum())} of {int(known.sum())}"
            if known.any() else "unknown", "fine-tuned best at step 0": _at_step0(g),
        })  # fmt: skip
    return pd.DataFrame(rows)


def _at_step0(rows: pd.DataFrame) -> str:
    """"k of n": the fine-tuning runs among ``rows`` whose best validation was at step 0 ("-" without any)."""
    ft = rows[rows["stage"] == "finetune"]
    if ft.empty or "best_step" not in ft or ft["best_step"].isna().all():
        return "-"
    steps = pd.to_numeric(ft["best_step"], errors="coerce").dropna()
    return f"{int((steps == 0).sum())} of {len(steps)}"


def budget_limited_runs(runs: pd.DataFrame) -> tuple[pd.DataFrame | None, str]:
    """The ok runs whose second half of training still lowered the best validation by more than
    ``harness.train.loop.BUDGET_GAIN`` (id, stage, system, shift, size, seed, N,
    lr, best step, steps), or None and why they cannot be listed (the runs do not record it)."""
    if IMPROVING not in runs or runs[IMPROVING].isna().all():
        return None, ("The runs do not record budget_limited (written before it was added to the summary): "
                      "whether their budget limited them is unknown")  # fmt: skip
    flagged = runs[runs[IMPROVING].astype("boolean").fillna(False).astype(bool)]
    unknown = int(runs.loc[runs["stage"].isin(TRAINED), IMPROVING].isna().sum())
    note = f"; {unknown} runs do not record it" if unknown else ""
    columns = [c for c in IMPROVING_COLUMNS if c in flagged]
    table = flagged[columns].rename(columns=IMPROVING_COLUMNS).sort_values(["stage", "N", "id"], na_position="first")
    return table.reset_index(drop=True), note


def _numeric(rows: pd.DataFrame, column: str) -> pd.Series:
    """``column`` as numbers, 0 where null or absent (the rule columns' "off")."""
    if column not in rows:
        return pd.Series(0.0, rows.index)
    return pd.to_numeric(rows[column], errors="coerce").fillna(0.0)


def _values(rows: pd.DataFrame, column: str) -> str:
    """The distinct non-null values of ``column`` as "a" or "a, b" ("" when absent or all null)."""
    if column not in rows:
        return ""
    values = pd.to_numeric(rows[column], errors="coerce").dropna().unique()
    return ", ".join(f"{v:g}" for v in sorted(values))


def _span(rows: pd.DataFrame, column: str) -> str:
    if column not in rows or rows[column].isna().all():
        return "-"
    lo, hi = rows[column].min(), rows[column].max()
    return f"{lo:g}" if lo == hi else f"{lo:g}-{hi:g}"


def _written(spec: dict) -> list[str]:
    """``key: value`` for every rule key in the spec's ``base``, ``matrix`` and ``zip`` groups (dotted paths;
    matrix and zip: value lists)."""
    sections = [("base", _flatten(spec.get("base") or {})), ("matrix", dict(spec.get("matrix") or {}))]
    sections += [("zip", dict(group)) for group in spec.get("zip") or [] if isinstance(group, dict)]
    return [f"{name} {key}: {value}" for name, flat in sections for key, value in flat.items()
            if key.split(".")[-1] in RULE_KEYS]  # fmt: skip


def _flatten(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out |= _flatten(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out
