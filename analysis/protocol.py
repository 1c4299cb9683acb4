"""The protocol a sweep used, stated from its summary rows (what the jobs resolved) and its plan's spec (what the
sweep file wrote), and the runs whose step budget limited them.

Validation rule: ``downstream.n_val_fraction`` f > 0 means n_val = max(``downstream.n_val_min``, ceil(f n_train)),
resolved at expand into ``downstream.n_val``; otherwise (or when the columns are absent, as in sweeps written before
the rule existed) n_val is the fixed ``downstream.n_val``. Training length: ``train.steps`` > 0 is a budget of
optimiser steps; otherwise ``train.epochs`` epochs, with at least ``train.min_steps`` steps when that is > 0.
"""

from __future__ import annotations

import pandas as pd

from analysis.curves import IMPROVING, N

DOWNSTREAM = ("finetune", "scratch")
TRAINED = ("pretrain", *DOWNSTREAM)  # the stages that train (a zero-shot run only evaluates)
RULE_KEYS = ("n_val", "n_val_fraction", "n_val_min", "steps", "min_steps", "epochs")
IMPROVING_COLUMNS = {
    "id": "id", "stage": "stage", "downstream.system": "system", "downstream.shift": "shift", "model.arch": "arch",
    "model.width": "width", "model.modes": "modes", "seed": "seed", N: "N", "train.lr": "lr",
    "best_step": "best step", "steps_run": "steps",
}  # fmt: skip


def protocol_lines(runs: pd.DataFrame, spec: dict | None) -> list[str]:
    """Sentences stating the validation rule and the training length of the downstream runs (and of the
    pretraining runs when there are any), then the rule keys as the sweep file wrote them."""
    down = runs[runs["stage"].isin(DOWNSTREAM)]
    lines = [f"Validation (fine-tuning and scratch): {validation_rule(down)}.",
             f"Training length (fine-tuning and scratch): {length_rule(down, 'train')}."]  # fmt: skip
    pre = runs[runs["stage"] == "pretrain"]
    if not pre.empty:
        n_val = _values(pre, "pretrain.n_val")
        lines.append(f"Pretraining: fixed n_val = {n_val or 'not recorded'}; {length_rule(pre, 'pretrain.train')}.")
    written = _written(spec or {})
    lines.append("As the sweep file writes them: " + ("; ".join(written) if written else "none of "
                 + ", ".join(RULE_KEYS) + " (defaults)") + ".")  # fmt: skip
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
    """Per downstream N (fine-tuning and scratch runs): runs, resolved n_val, steps and epochs run (min-max) and
    how many runs were budget-limited ("unknown" when the runs do not record it)."""
    down = runs[runs["stage"].isin(DOWNSTREAM) & runs[N].notna()]
    rows = []
    for n, g in down.groupby(N, sort=True):
        known = g[IMPROVING].notna() if IMPROVING in g else pd.Series(False, g.index)
        rows.append({
            "N": int(n), "runs": len(g), "n_val": _values(g, "downstream.n_val") or "-",
            "steps run": _span(g, "steps_run"), "epochs run": _span(g, "epochs_run"),
            "budget-limited": f"{int(g.loc[known, IMPROVING].astype(bool).sum())} of {int(known.sum())}"
            if known.any() else "unknown",
        })  # fmt: skip
    return pd.DataFrame(rows)


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
