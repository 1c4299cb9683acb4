"""Downstream error vs pretraining samples P (``analysis.pretrain_law``): one panel per downstream system, shift and
N at the largest model (of each model family), one line per pretraining strategy and every other axis the curves
vary (model family, pretraining system, augmentation...), the mean over seeds with min/max bars and the fitted law
err = a P^-b + c dashed with its 95 % band; scratch at the same N and model as a dotted level."""

from __future__ import annotations

import pandas as pd

from analysis.curves import (
    ARCH,
    ERR,
    PANEL,
    SIZE,
    N,
    curves,
    downstream_points,
    mean_points,
    metric_label,
    ordered_panels,
)
from analysis.figures.strategy import SCRATCH_LABEL
from analysis.figures.style import (
    FigureResult,
    Series,
    draw_panel,
    human_count,
    panel_grid,
    paper_style,
    ramp,
    stage_color,
)
from analysis.pretrain_law import PRETRAIN_N, PretrainFits, fit_pretrain_sizes, pretrain_points

FIGURE_BOOT = 200  # bootstrap size when the figure is asked for without precomputed fits


def _largest(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows of the largest model (by parameter count) of each model family present."""
    family = rows[ARCH] if ARCH in rows else pd.Series("", rows.index)
    return rows[rows["n_params"] == rows.groupby(family)["n_params"].transform("max")]


def _labels(rows: pd.DataFrame, keys: list[str]) -> pd.Series:
    """Each row's line label: its strategy, then every other curve-key column that varies in ``rows``."""
    varied = [c for c in keys if c not in (*PANEL, "stage", *SIZE, N, "pretrain.strategy") and rows[c].nunique() > 1]
    text = rows["pretrain.strategy"].astype(str)
    for c in varied:
        text = text + f", {c.split('.')[-1]} " + rows[c].astype(str)
    return text


@paper_style
def pretrain_size(runs: pd.DataFrame, fits: object = None, *, sizes: PretrainFits | None = None) -> FigureResult:
    """Error vs pretraining samples per system, shift and downstream N (module docstring)."""
    sizes = sizes if sizes is not None else fit_pretrain_sizes(runs, n_boot=FIGURE_BOOT)
    pts, keys, skip = pretrain_points(runs)
    if sizes.skip or skip:
        return FigureResult(None, sizes.skip or skip)
    pts = pts.assign(line=_labels(pts, keys))
    names = sorted(pts["line"].unique())
    colors = dict(zip(names, ramp("colorblind", len(names)), strict=True))
    scratch = downstream_points(runs)
    scratch = scratch[scratch["stage"] == "scratch"]
    panels: dict[str, list[Series]] = {}
    for system, shift in ordered_panels(pts):
        here = pts[(pts[PANEL[0]] == system) & (pts[PANEL[1]] == shift)]
        for n in sorted(here[N].unique()):
            big = _largest(here[here[N] == n])
            series = [Series(m[PRETRAIN_N].to_numpy(), m["mean"].to_numpy(), colors[c["line"].iloc[0]],
                             c["line"].iloc[0], m["min"].to_numpy(), m["max"].to_numpy(), sizes.get(c))
                      for _, c in curves(big, sizes.key_columns) if not (m := mean_points(c, x=PRETRAIN_N)).empty]
            level = scratch[(scratch[PANEL[0]] == system) & (scratch[PANEL[1]] == shift) & (scratch[N] == n)
                            & scratch["n_params"].isin(big["n_params"])]  # fmt: skip
            if not level.empty:
                series.append(Series(None, level[ERR].to_numpy(), stage_color("scratch"), SCRATCH_LABEL))
            panels[f"{system} / {shift}, N={human_count(n)}, {human_count(big['n_params'].max())} params"] = series
    fig, axes = panel_grid(list(panels), "Error vs pretraining samples (dashed: err = a P^-b + c; dotted: scratch)")
    for ax, series in zip(axes, panels.values(), strict=True):
        draw_panel(ax, series, "pretraining samples P", f"test {metric_label(runs)}")
    return FigureResult(fig)
