"""Error vs rollout step: how the next_step runs' error grows as their predictions are fed back.

Each next_step run records ``rollout_step_rel_l2`` (JSON list: at rollout step k, the mean over its test
trajectories of the relative L2 error of the k-th predicted frame). One panel per downstream system and shift;
one colour per pretraining strategy (scratch as "none (scratch)", zero-shot as "zero-shot") and pretraining
system where it varies, one line style per augmentation where it varies, at the panel's largest model and
largest downstream N, the mean over seeds.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from analysis.curves import DOWNSTREAM, PANEL, N, metric_label, ordered_panels
from analysis.figures.strategy import SCRATCH_LABEL, augment_labels
from analysis.figures.style import FigureResult, Series, draw_panel, human_count, panel_grid, paper_style, ramp
from analysis.load import ROLLOUT

NO_ROLLOUTS = "no run was rolled out (task next_step records its rollout errors)"
STYLES = ("-", "--", ":", "-.")  # one per augmentation


def rollout_rows(runs: pd.DataFrame) -> pd.DataFrame:
    """The downstream rows with a rollout, labelled by ``line`` (the strategy, and the pretraining system where it
    varies: the colour) and ``augment`` (the augmentation where it varies, else "": the line style)."""
    if ROLLOUT not in runs:
        return runs.iloc[:0]
    rows = runs[runs["stage"].isin(DOWNSTREAM) & runs[ROLLOUT].notna()].copy()
    if rows.empty:
        return rows
    strategy = rows["pretrain.strategy"].astype("string").fillna("")
    line = strategy.where(rows["stage"] == "finetune", "")
    line = line.mask(rows["stage"] == "scratch", SCRATCH_LABEL).mask(rows["stage"] == "zeroshot", "zero-shot")
    pretrained = rows["stage"] != "scratch"
    if rows.loc[pretrained, "pretrain.system"].nunique() > 1:
        line = line.mask(pretrained, line + " from " + rows["pretrain.system"].astype("string"))
    augment = augment_labels(rows)
    return rows.assign(line=line.astype(str), augment=augment if augment.nunique() > 1 else "")


@paper_style
def rollout_errors(runs: pd.DataFrame, fits: object = None) -> FigureResult:
    """Per-step relative L2 vs rollout step per system and shift, one line per strategy (and augmentation) at the
    largest model and N."""
    rows = rollout_rows(runs)
    if rows.empty:
        return FigureResult(None, NO_ROLLOUTS)
    names = sorted(rows["line"].unique())
    colors = dict(zip(names, ramp("colorblind", len(names)), strict=True))
    downstream_aug = sorted({aug.split("/")[-1] for aug in rows["augment"]})  # scratch's "-/scale" styled as scale
    styles = {aug: STYLES[downstream_aug.index(aug.split("/")[-1]) % len(STYLES)] for aug in rows["augment"].unique()}
    panels: dict[str, list[Series]] = {}
    for system, shift in ordered_panels(rows):
        sub = rows[(rows[PANEL[0]] == system) & (rows[PANEL[1]] == shift)]
        sub = sub[sub["n_params"] == sub["n_params"].max()]
        trained = sub[sub["stage"] != "zeroshot"]
        largest = trained[N].max() if not trained.empty else None
        if largest is not None:
            sub = sub[(sub["stage"] == "zeroshot") | (sub[N] == largest)]
        title = f"{system} / {shift}" + (f", N={human_count(largest)}" if largest is not None else "")
        panels[title] = [_mean_series(group, colors[name], styles[aug], f"{name}, augment {aug}" if aug else name)
                         for (name, aug), group in sub.groupby(["line", "augment"], sort=True)]
    fig, axes = panel_grid(list(panels), "Error vs rollout step (mean over seeds; largest model and N)", loglog=False)
    for ax, series in zip(axes, panels.values(), strict=True):
        ax.set_yscale("log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        draw_panel(ax, series, "rollout step", f"{metric_label(runs)} of the frame")
    return FigureResult(fig)


def _mean_series(rows: pd.DataFrame, color: tuple, style: str, label: str) -> Series:
    """The mean per-step error over the rows' rollouts (seeds), with min/max bars; steps the rollouts share."""
    curves = [np.asarray(json.loads(text), dtype=float) for text in rows[ROLLOUT]]
    steps = min(len(c) for c in curves)
    stacked = np.stack([c[:steps] for c in curves])
    return Series(np.arange(1, steps + 1), stacked.mean(axis=0), color, label, stacked.min(axis=0),
                  stacked.max(axis=0), marker="", line=style)
