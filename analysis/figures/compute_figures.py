"""Figures of compute (``analysis.compute``, ``analysis.optimal``) and of the fits' residuals
(``analysis.diagnostics``): test error against training compute per model size with the lower envelope (the
compute frontier), the compute-optimal allocation P*(C) and its error err*(C), and the log residuals of every fit."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.compute import COUNTINGS, counted
from analysis.curves import ERR, PANEL, N, downstream_points, primary
from analysis.diagnostics import FIT_NAMES
from analysis.figures.style import (
    STAGE_LABELS,
    FigureResult,
    Series,
    draw_panel,
    human_count,
    panel_grid,
    paper_style,
    stage_color,
)

FRONTIER = (0.1, 0.1, 0.1, 1.0)
_COUNTING_SHADE = {"training": 1.0, "pretraining amortised": 0.6, "pretraining in full": 0.25}


def _by_n(rows: pd.DataFrame, c: np.ndarray) -> pd.DataFrame:
    """Mean compute and mean, min and max error over seeds at each N."""
    g = rows.assign(C=c).groupby(N, sort=True)
    return pd.DataFrame({"C": g["C"].mean(), "mean": g[ERR].mean(), "min": g[ERR].min(), "max": g[ERR].max()})


def frontier(c: np.ndarray, err: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The lower envelope of (compute, error) points: those no cheaper or equally cheap point matches, in order of
    compute."""
    c, err = np.asarray(c, dtype=float), np.asarray(err, dtype=float)
    order = np.lexsort((err, c))  # by compute, the lowest error first among equal computes
    c, err = c[order], err[order]
    keep = err < np.minimum.accumulate(np.r_[np.inf, err[:-1]])
    return c[keep], err[keep]


@paper_style
def error_vs_compute(runs: pd.DataFrame, fits: object = None, *, compute: pd.DataFrame) -> FigureResult:
    """Test error vs training FLOPs, one curve per model size (means over seeds at each N, bars: min/max), and the
    frontier (the lower envelope of those means); per system and shift, scratch and the reference transfer with
    its pretraining amortised and counted in full (dotted in those panels: the scratch frontier)."""
    pts = primary(downstream_points(runs)).merge(compute, on="id")
    pts = pts[pts["stage"].isin(["finetune", "scratch"]) & (pts["compute"] > 0)]
    if pts.empty:
        return FigureResult(None, "no fine-tuned or scratch run has counted FLOPs (no plan to read them from)")
    panels = {}
    for (system, shift), sub in pts.groupby(PANEL, sort=True):
        scratch_front = None
        for stage, counting in [("scratch", "training"), *(("finetune", c) for c in list(COUNTINGS)[1:])]:
            rows = sub[sub["stage"] == stage]
            if rows.empty:
                continue
            sizes = sorted(rows["n_params"].unique())
            series, means = [], []
            for i, p in enumerate(sizes):
                size = rows[rows["n_params"] == p]
                m = _by_n(size, counted(size, counting))
                means.append(m)
                color = stage_color(stage, i / max(len(sizes) - 1, 1))
                series.append(Series(m["C"].to_numpy(), m["mean"].to_numpy(), color, f"P={human_count(p)}",
                                     m["min"].to_numpy(), m["max"].to_numpy(), line="-"))  # fmt: skip
            all_means = pd.concat(means)
            fx, fy = frontier(all_means["C"].to_numpy(), all_means["mean"].to_numpy())
            series.append(Series(fx, fy, FRONTIER, "frontier", marker="", line="-"))
            if stage == "scratch":
                scratch_front = (fx, fy)
            elif scratch_front is not None:
                series.append(Series(*scratch_front, (0.5, 0.5, 0.5, 1.0), "scratch frontier", marker="", line=":"))
            title = STAGE_LABELS[stage] + ("" if counting == "training" else f", {counting}")
            panels[f"{system} / {shift}: {title}"] = series
    fig, axes = panel_grid(list(panels), "Test error vs training compute, one curve per model size (points: N); "
                                         "black: the compute frontier")  # fmt: skip
    for ax, series in zip(axes, panels.values(), strict=True):
        draw_panel(ax, series, "training FLOPs", "test relative L2")
    return FigureResult(fig)


@paper_style
def compute_optimal_figure(optimal: pd.DataFrame, skip: str) -> FigureResult:
    """P*(C) and err*(C) of every group's allocation (bands: their intervals; dotted where P* or N* lies outside
    the sampled sizes or N), per system and shift."""
    if optimal.empty:
        return FigureResult(None, skip)
    panels: dict[str, list] = {}
    labelled = [c for c in optimal.columns if c in ("stage", "arch", "pretrain_system", "strategy")]
    for (system, shift), sub in optimal.groupby(["system", "shift"], sort=True):
        for what in ("P", "err"):
            panels[f"{system} / {shift}: {'model size P*' if what == 'P' else 'error err*'}"] = [
                (what, rows) for _, rows in sub.groupby([*labelled, "counting"], sort=False, dropna=False)]
    fig, axes = panel_grid(list(panels), "Compute-optimal allocation from the joint law: model size P*(C) and the "
                                         "error it reaches (bands: intervals; dotted: beyond the sampled P or N)")
    for ax, entries in zip(axes, panels.values(), strict=True):
        for what, rows in entries:
            first = rows.iloc[0]
            stage, counting = str(first["stage"]), str(first["counting"])
            color = stage_color(stage, _COUNTING_SHADE[counting])
            label = STAGE_LABELS[stage] + ("" if counting == "training" else f", {counting}")
            if stage == "finetune" and "strategy" in rows:
                label += f" ({first['pretrain_system']}, {first['strategy']})"
            c, v = rows["compute"].to_numpy(float), rows[f"{what}_opt"].to_numpy(float)
            inside = ~rows["extrapolated"].to_numpy(bool)
            ax.plot(c, v, color=color, linestyle=":", linewidth=1.0)
            ax.plot(np.where(inside, c, np.nan), np.where(inside, v, np.nan), color=color, linewidth=1.3, label=label)
            ax.fill_between(c, rows[f"{what}_lo"].to_numpy(float), rows[f"{what}_hi"].to_numpy(float), color=color,
                            alpha=0.15, linewidth=0)  # fmt: skip
        ax.set_xlabel("compute C (FLOPs)")
        ax.set_ylabel("parameters P*" if entries[0][0] == "P" else "test relative L2 at the optimum")
        ax.legend(fontsize="xx-small", frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return FigureResult(fig)


@paper_style
def residuals_figure(residuals: pd.DataFrame) -> FigureResult:
    """Log residuals of every fitted point against N (D_F for the D_T law), one panel per kind of fit."""
    if residuals.empty:
        return FigureResult(None, "no fit to show residuals of")
    kinds = [k for k in FIT_NAMES if k in set(residuals["fit"])]
    fig, axes = panel_grid([FIT_NAMES[k] for k in kinds], "Log residuals log(observed / fitted) of every fit",
                           loglog=False, legends=False)  # fmt: skip
    for ax, kind in zip(axes, kinds, strict=True):
        rows = residuals[residuals["fit"] == kind]
        for stage, sub in rows.groupby("stage", sort=True):
            ax.plot(sub["x"], sub["log_residual"], linestyle="none", marker="o", markersize=2.5, alpha=0.6,
                    color=stage_color(stage), label=STAGE_LABELS[stage])  # fmt: skip
        ax.set_xscale("log")
        ax.axhline(0.0, color="0.3", linewidth=0.8)
        rms = float(np.sqrt(np.mean(rows["log_residual"].to_numpy(float) ** 2)))
        ax.set_xlabel("D_F" if kind == "data_transferred" else "N")
        ax.set_ylabel(f"log residual (rms {rms:.3f})")
        ax.legend(fontsize="xx-small", frameon=False)
    return FigureResult(fig)
