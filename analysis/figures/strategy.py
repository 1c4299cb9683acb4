"""The strategy comparison's rows: every (pretraining strategy, augmentation) curve, scratch as strategy "none".

A sweep's ``pretrain.strategy: none`` point becomes a scratch job without pretraining keys, so scratch rows have
an empty strategy: they are labelled ``none (scratch)``. The augmentation is ``pretrain.train.augment`` (the
pretraining's; null on scratch rows) and ``train.augment`` (the downstream training's); a row is labelled by the
ones that vary, "pretraining/downstream" when both do.
"""

from __future__ import annotations

import pandas as pd

from analysis.curves import ARCH, ERR, PANEL, SIZE, N, at_largest_pretraining, downstream_points

SCRATCH_LABEL = "none (scratch)"
AUGMENT = ("pretrain.train.augment", "train.augment")
DEFAULT_AUGMENT = "none"  # harness.job.TrainConfig.augment when a sweep does not set it
NO_STRATEGIES = "pretrain.strategy is not varied"


def strategy_points(runs: pd.DataFrame) -> tuple[pd.DataFrame, list[str], str]:
    """Fine-tuned (not from the mixture; at each strategy's largest pretraining size) and scratch rows with
    ``strategy`` and ``augment`` label columns, the pretraining strategies of the fine-tuned rows, and why the
    comparison is skipped ("" when it is not)."""
    pts = at_largest_pretraining(downstream_points(runs))
    pts = pts[(pts["stage"] == "scratch") | ((pts["stage"] == "finetune") & (pts["pretrain.system"] != "mixed"))]
    names = sorted(pts.loc[pts["stage"] == "finetune", "pretrain.strategy"].unique())
    if len(names) < 2:
        return pts, names, f"{NO_STRATEGIES} ({', '.join(names) or 'no finetune runs'})"
    scratch = pts["stage"] == "scratch"
    labels = pd.Series(pts["pretrain.strategy"].astype(str), index=pts.index).where(~scratch, SCRATCH_LABEL)
    return pts.assign(strategy=labels, augment=augment_labels(pts)), names, ""


def augment_labels(pts: pd.DataFrame) -> pd.Series:
    """Each row's augmentation: the varying one of (pretraining, downstream), or "pre/down" when both vary."""
    values = {c: pts[c].astype("string") if c in pts else pd.Series(pd.NA, pts.index, "string") for c in AUGMENT}
    pre, down = values[AUGMENT[0]], values[AUGMENT[1]].fillna(DEFAULT_AUGMENT)
    pre = pre.where(pts["stage"] == "scratch", pre.fillna(DEFAULT_AUGMENT)).fillna("-")  # scratch: no pretraining
    vary_pre = pre[pts["stage"] != "scratch"].nunique() > 1
    if vary_pre and down.nunique() > 1:
        return (pre + "/" + down).astype(str)
    return (pre if vary_pre else down).astype(str)


def strategy_table(runs: pd.DataFrame) -> tuple[pd.DataFrame | None, str]:
    """Mean test error per (strategy, augmentation) row and one column per downstream N (``N=<n>``), per system,
    shift and model size (in a sweep over families: family and parameter count) where those vary; or None and why
    the sweep has no strategy comparison."""
    pts, _, skip = strategy_points(runs)
    if skip:
        return None, skip
    pts = pts[pts[N].notna()]
    keys = [c for c in [*PANEL, *([ARCH, "n_params"] if ARCH in pts else SIZE)] if pts[c].nunique() > 1]
    if pts.loc[pts["stage"] == "finetune", "pretrain.system"].nunique() > 1:
        keys.append("pretrain.system")
    means = pts.groupby([*keys, "strategy", "augment", N], sort=True)[ERR].mean().rename("err").reset_index()
    table = means.pivot_table(index=[*keys, "strategy", "augment"], columns=N, values="err", sort=True)
    order = {name: i for i, name in enumerate(sorted(set(means["strategy"]) - {SCRATCH_LABEL}) + [SCRATCH_LABEL])}
    table = table.reset_index().sort_values([*keys, "strategy", "augment"], key=lambda c: c.map(order)
                                            if c.name == "strategy" else c, kind="stable")  # fmt: skip
    table.columns = [_column(c) for c in table.columns]
    return table.reset_index(drop=True), ""


def _column(name: object) -> str:
    short = {"downstream.system": "system", "downstream.shift": "shift", ARCH: "arch", "model.width": "width",
             "model.modes": "modes", "n_params": "params", "pretrain.system": "pretrain_system",
             "augment": "augmentation"}  # fmt: skip
    return f"N={int(name)}" if isinstance(name, float | int) else short.get(str(name), str(name))
