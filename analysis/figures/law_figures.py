"""Figures of the transfer laws (``analysis.laws``): effective data transferred vs fine-tuning samples, and the joint
law err(P, N) as curves vs N per model size. Each takes the ok runs, their curve fits and their laws (computed
when not given) and returns a FigureResult."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from analysis.curves import (
    BASE_KEY,
    PANEL,
    CurveFits,
    N,
    downstream_points,
    fit_curves,
    mean_points,
    metric_label,
    primary,
)
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
from analysis.laws import Laws, fit_laws
from analysis.transfer import LawFit

FIGURE_BOOT = 200  # bootstrap size when a figure is asked for without precomputed fits and laws
EXTRAPOLATED_LABEL = "hollow: D_E extrapolated"


def _setup(runs: pd.DataFrame, fits: CurveFits | None, laws: Laws | None) -> tuple[CurveFits, Laws]:
    fits = fits if fits is not None else fit_curves(runs, n_boot=FIGURE_BOOT)
    return fits, laws if laws is not None else fit_laws(runs, fits, n_boot=FIGURE_BOOT)


def _ci(fit: LawFit, name: str) -> str:
    lo, hi = fit.ci(name)
    return f"{name}={fit[name]:.2f} [{lo:.2f}, {hi:.2f}{'' if fit.basis.valid else ' not 95 %'}]"


def _panels(pts: pd.DataFrame, laws: Laws) -> list[tuple[str, pd.DataFrame]]:
    """(title, rows) per system, shift and any other varied axis of the laws' groups: one group per stage each."""
    extra = [c for c in laws.group_columns if c not in BASE_KEY]
    return [(" / ".join(map(str, key[:2])) + "".join(f", {c}={v}" for c, v in zip(extra, key[2:], strict=True)), rows)
            for key, rows in pts.groupby([*PANEL, *extra], sort=True, dropna=False)]  # fmt: skip


def _size_colors(rows: pd.DataFrame, stage: str) -> dict[float, tuple]:
    sizes = sorted(rows["n_params"].unique())
    return {p: stage_color(stage, i / max(len(sizes) - 1, 1)) for i, p in enumerate(sizes)}


@paper_style
def data_transferred(runs: pd.DataFrame, fits: CurveFits | None = None, laws: Laws | None = None) -> FigureResult:
    """Effective data transferred D_T vs fine-tuning samples D_F, one colour per model size, with the fitted law
    D_T = k D_F^alpha P^beta at each size; per system and shift, for the reference transfer (``primary``).

    Points are geometric means over seeds (bars: min/max) of the runs the law used; hollow where some run's D_E was
    read beyond the scratch curve's sampled N.
    """
    fits, laws = _setup(runs, fits, laws)
    pts = laws.points[laws.points["use"] == "ok"]
    if pts.empty:
        return FigureResult(None, "no fine-tuned run has a positive effective data transferred (needs matching "
                                  "scratch fits)")  # fmt: skip
    pts = primary(pts.assign(log_dt=np.log(pts["d_t"].astype(float))))
    panels = {}
    for title, sub in _panels(pts, laws):
        law = laws.get("data_transferred", sub)
        colors, series = _size_colors(sub, "finetune"), []
        for p, rows in sub.groupby("n_params", sort=True):
            m = mean_points(rows, x="d_f", y="log_dt")
            hollow = rows.groupby("d_f", sort=True)["extrapolated"].any().to_numpy(bool)
            series.append(Series(m["d_f"].to_numpy(), np.exp(m["mean"].to_numpy()), colors[p], f"P={human_count(p)}",
                                 np.exp(m["min"].to_numpy()), np.exp(m["max"].to_numpy()), hollow=hollow))  # fmt: skip
            if law is not None:
                grid = np.geomspace(m["d_f"].min(), m["d_f"].max(), 32)
                beta = 0.0 if np.isnan(law["beta"]) else law["beta"]
                series.append(Series(grid, law["k"] * grid ** law["alpha"] * p**beta, colors[p], None, marker="",
                                     line="--"))  # fmt: skip
        fit_text = "no fit" if law is None else ", ".join(_ci(law, n) for n in ("alpha", "beta") if np.isfinite(law[n]))
        panels[f"{title}: {fit_text}"] = series
    if not panels:
        return FigureResult(None, "no reference transfer (pretrained on the downstream system) has a positive D_T")
    fig, axes = panel_grid(list(panels), "Effective data transferred D_T = D_E - D_F (dashed: k D_F^alpha P^beta; "
                                         "hollow: D_E read beyond the scratch curve's sampled N)")  # fmt: skip
    for ax, series in zip(axes, panels.values(), strict=True):
        draw_panel(ax, series, "fine-tuning samples D_F", "data transferred D_T (samples)", EXTRAPOLATED_LABEL)
    return FigureResult(fig)


@paper_style
def joint_law(runs: pd.DataFrame, fits: CurveFits | None = None, laws: Laws | None = None) -> FigureResult:
    """Test error vs N per model size, fine-tuned (reference transfer) and scratch, with the joint law
    err = E + A P^-a + B N^-b of each initialisation drawn at every size; per system and shift with a fit."""
    fits, laws = _setup(runs, fits, laws)
    pts = primary(downstream_points(runs))
    pts = pts[pts["stage"].isin(["finetune", "scratch"])]
    panels = {}
    for title, sub in _panels(pts, laws):
        series = []
        for stage, rows in sub.groupby("stage", sort=True):
            law = laws.get("joint", rows)
            if law is None:
                continue
            colors = _size_colors(rows, stage)
            for i, (p, size) in enumerate(rows.groupby("n_params", sort=True)):
                m = mean_points(size)
                series.append(Series(m[N].to_numpy(), m["mean"].to_numpy(), colors[p],
                                     f"{STAGE_LABELS[stage]} {human_count(p)}", m["min"].to_numpy(),
                                     m["max"].to_numpy()))  # fmt: skip
                grid = np.geomspace(m[N].min(), m[N].max(), 32)
                pred = law["E"] + law["A"] * p ** -law["a"] + law["B"] * grid ** -law["b"]
                label = f"{STAGE_LABELS[stage]} law: {_ci(law, 'a')}, {_ci(law, 'b')}" if i == 0 else None
                series.append(Series(grid, pred, colors[p], label, marker="", line="--"))
        if series:
            panels[title] = series
    if not panels:
        why = "; ".join(sorted({why for law, _, why in laws.skipped if law == "joint"})) or "no finetune/scratch runs"
        return FigureResult(None, f"no joint law was fitted ({why})")
    fig, axes = panel_grid(list(panels), "Joint law err = E + A P^-a + B N^-b per initialisation (dashed), by model "
                                         "size (colour shade)")  # fmt: skip
    for ax, series in zip(axes, panels.values(), strict=True):
        draw_panel(ax, series, "downstream samples N", f"test {metric_label(runs)}")
    return FigureResult(fig)


LAW_FIGURES: list[tuple[str, Callable[..., FigureResult]]] = [
    ("data_transferred", data_transferred),
    ("joint_law", joint_law),
]
