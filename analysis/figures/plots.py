"""The papers' figures. Each takes the ok runs (and optionally their curve fits) and returns a FigureResult:
a figure, or None and the reason the sweep cannot show it (the axes it needs are not varied). A sweep over model
families (``model.arch``) gets a panel per family beside its system and shift; "model size" is each family's own
(ranked by parameter count), the largest model the largest of its family."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from analysis.curves import (
    ARCH,
    ERR,
    PANEL,
    CurveFits,
    N,
    budget_limited_at,
    curves,
    downstream_points,
    fit_curves,
    gains,
    mean_points,
    metric_label,
    model_labels,
    ordered_panels,
    pairs,
    primary,
    primary_strategy,
    spread_values,
)
from analysis.figures.rollout import rollout_errors
from analysis.figures.strategy import SCRATCH_LABEL, strategy_points
from analysis.figures.style import (
    STAGE_LABELS,
    FigureResult,
    Series,
    draw_panel,
    human_count,
    panel_grid,
    paper_style,
    ramp,
    stage_color,
)
from analysis.powerlaw import efficiency_multiplier, efficiency_multiplier_interp
from harness.models import family

FIGURE_BOOT = 200  # bootstrap size when a figure is asked for without precomputed fits
NO_N = "downstream.n_train is not varied (each curve has a single N)"
NO_PAIRS = "no fine-tuned run has a scratch run with the same config and N"


def _setup(runs: pd.DataFrame, fits: CurveFits | None) -> tuple[pd.DataFrame, CurveFits]:
    return downstream_points(runs), fits if fits is not None else fit_curves(runs, n_boot=FIGURE_BOOT)


def _size_rank(pts: pd.DataFrame) -> dict[str, float]:
    """Model (``model_labels``) -> position in 0..1 on the model-size colour ramp, ordered by parameter count."""
    order = pts["n_params"].groupby(model_labels(pts)).mean().sort_values(kind="stable").index.tolist()
    return {size: i / max(len(order) - 1, 1) for i, size in enumerate(order)}


def _largest(rows: pd.DataFrame, among: pd.DataFrame | None = None) -> pd.DataFrame:
    """The rows of the largest model (by parameter count) of ``among`` (default: of ``rows``)."""
    among = rows if among is None else among
    return rows[model_labels(rows) == among["n_params"].groupby(model_labels(among)).mean().idxmax()]


def _series(rows: pd.DataFrame, fits: CurveFits, color: tuple, label: str) -> list[Series]:
    """Mean-over-seeds points with min/max bars and the fit, per curve in ``rows``; zero-shot as a level."""
    return [_curve_series(c, fits, color, label) for _, c in curves(rows, fits.key_columns)]


def _curve_series(c: pd.DataFrame, fits: CurveFits, color: tuple, label: str) -> Series:
    """One curve's rows as a Series: mean-over-seeds points with min/max bars and its fit; zero-shot as a level."""
    if c[N].isna().all():
        return Series(None, c[ERR].to_numpy(), color, label)
    m = mean_points(c)
    return Series(m[N].to_numpy(), m["mean"].to_numpy(), color, label, m["min"].to_numpy(), m["max"].to_numpy(),
                  fits.get(c), hollow=budget_limited_at(c))  # fmt: skip


def _curves_figure(panels: dict[str, list[Series]], suptitle: str, ylabel: str) -> Figure:
    fig, axes = panel_grid(list(panels), suptitle)
    for ax, series in zip(axes, panels.values(), strict=True):
        draw_panel(ax, series, "downstream samples N", ylabel)
    return fig


def _panel_rows(pts: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(title, rows) per system and shift, and per model family where the rows hold several."""
    panels = [(f"{sys} / {shift}", pts[(pts[PANEL[0]] == sys) & (pts[PANEL[1]] == shift)])
              for sys, shift in ordered_panels(pts)]  # fmt: skip
    if ARCH not in pts or pts[ARCH].nunique() < 2:
        return panels
    return [(f"{title} / {family(arch).label}", rows[rows[ARCH] == arch])
            for title, rows in panels for arch in sorted(rows[ARCH].unique())]  # fmt: skip


def _family_rows(pts: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(title, rows) per downstream system, and per model family where the rows hold several."""
    if ARCH not in pts or pts[ARCH].nunique() < 2:
        return list(pts.groupby(PANEL[0], sort=True))
    return [(f"{system} / {family(arch).label}", rows)
            for (system, arch), rows in pts.groupby([PANEL[0], ARCH], sort=True)]  # fmt: skip


@paper_style
def error_vs_n(runs: pd.DataFrame, fits: CurveFits | None = None) -> FigureResult:
    """Test error vs downstream N, fine-tuned vs scratch (zero-shot as a level), per system and shift."""
    pts, fits = _setup(runs, fits)
    pts = primary(pts)
    trained = pts[pts["stage"] != "zeroshot"]
    if trained.empty:
        return FigureResult(None, "no finetune or scratch runs")
    if trained.groupby(PANEL)[N].nunique().max() < 2:
        return FigureResult(None, NO_N)
    rank = _size_rank(pts)
    panels = {}
    for title, sub in _panel_rows(pts):
        # one series per curve, in (stage, size) order: the curve key starts with them
        panels[title] = [_curve_series(c, fits, *_stage_style(c, rank)) for _, c in curves(sub, fits.key_columns)]
    title = "Error vs downstream samples (colour shade: model size)"
    return FigureResult(_curves_figure(panels, title, f"test {metric_label(runs)}"))


def _stage_style(c: pd.DataFrame, rank: dict[str, float]) -> tuple[tuple, str]:
    """A curve's colour (its stage's, shaded by its model size's ``rank``) and label (stage and parameter count)."""
    stage, size = c["stage"].iloc[0], model_labels(c).iloc[0]
    return stage_color(stage, rank[size]), f"{STAGE_LABELS[stage]} {human_count(c['n_params'].mean())}"


@paper_style
def gain_vs_size(runs: pd.DataFrame, fits: CurveFits | None = None) -> FigureResult:
    """Fine-tuning gain (scratch error / fine-tuned error) vs parameter count, one curve per N."""
    pts, fits = _setup(runs, fits)
    g = gains(primary(pts), fits.key_columns)
    if g.empty:
        return FigureResult(None, NO_PAIRS)
    sizes = g.groupby(ARCH)["n_params"].nunique().max() if ARCH in g else g["n_params"].nunique()
    if sizes < 2:
        return FigureResult(None, "model size (model.width, model.modes, or model.params) is not varied")
    n_values = spread_values(g[N].to_numpy())
    colors = ramp("crest", len(n_values))
    panels = {}
    for title, sub in _panel_rows(g):
        panels[title] = [
            Series(m["n_params"].to_numpy(), m["gain"].to_numpy(), color, f"N={human_count(n)}", line="-")
            for n, color in zip(n_values, colors, strict=True)
            if not (m := sub[sub[N] == n].groupby("n_params", as_index=False)["gain"].mean()).empty
        ]
    fig, axes = panel_grid(list(panels), "Fine-tuning gain vs model size")
    for ax, series in zip(axes, panels.values(), strict=True):
        ax.axhline(1.0, color="0.5", linewidth=0.8)
        draw_panel(ax, series, "parameters", "gain (scratch / fine-tuned error)")
    return FigureResult(fig)


@paper_style
def efficiency_vs_target(runs: pd.DataFrame, fits: CurveFits | None = None) -> FigureResult:
    """Data-efficiency multiplier n_scratch / n_finetune vs target error, one curve per shift level.

    Uses the largest model of each system; targets span the errors fine-tuning reaches. Solid: interpolated
    between measured N (only where both curves were measured); dashed: from the fits (scratch extrapolated).
    """
    pts, fits = _setup(runs, fits)
    pts = primary(pts)
    trained = pts[pts["stage"].isin(["finetune", "scratch"])]
    if set(trained["stage"]) != {"finetune", "scratch"}:
        return FigureResult(None, "needs both finetune and scratch runs")
    if trained.groupby(PANEL)[N].nunique().max() < 2:
        return FigureResult(None, NO_N)
    panels: dict[str, list[Series]] = {}
    for system, sys_rows in _family_rows(trained):
        big = _largest(sys_rows)
        shifts = [shift for _, shift in ordered_panels(big)]
        colors = dict(zip(shifts, ramp("flare", len(shifts)), strict=True))
        series = []
        for ft, sc in pairs(big, fits.key_columns):
            mf, ms, shift = mean_points(ft), mean_points(sc), ft[PANEL[1]].iloc[0]
            targets = np.geomspace(mf["mean"].min(), mf["mean"].max(), 60)  # what fine-tuning reaches
            interp = efficiency_multiplier_interp(ms[N], ms["mean"], mf[N], mf["mean"], targets)
            series.append(Series(targets, interp, colors[shift], f"shift {shift}", marker=".", line="-"))
            fit_f, fit_s = fits.get(ft), fits.get(sc)
            if fit_f is not None and fit_s is not None:
                fitted = efficiency_multiplier(fit_s, fit_f, targets)
                series.append(Series(targets, fitted, colors[shift], None, marker="", line="--"))
        if any(np.isfinite(s.y).any() for s in series):
            panels[f"{system}, {human_count(big['n_params'].mean())} params"] = series
    if not panels:
        return FigureResult(None, "fine-tuned and scratch errors never overlap: no multiplier without extrapolation")
    fig, axes = panel_grid(list(panels), "Data-efficiency multiplier, largest model (solid: measured, dashed: fit)")
    for ax, series in zip(axes, panels.values(), strict=True):
        draw_panel(ax, series, f"target test {metric_label(runs)}", "n_scratch / n_fine-tuned")
    return FigureResult(fig)


@paper_style
def gain_heatmap(runs: pd.DataFrame, fits: CurveFits | None = None) -> FigureResult:
    """Width x modes heatmap of the fine-tuning gain (geometric mean over systems and shifts), one facet per N."""
    pts, fits = _setup(runs, fits)
    g = gains(primary(pts), fits.key_columns)
    g = g[g[ARCH] == "fno"] if ARCH in g else g  # width x modes: the FNO's sizes
    if g.empty:
        return FigureResult(None, NO_PAIRS)
    if g["model.width"].nunique() < 2 and g["model.modes"].nunique() < 2:
        return FigureResult(None, "model.width and model.modes are not varied")
    n_values = spread_values(g[N].to_numpy())
    g = g.assign(log_gain=np.log(g["gain"]))
    grids = [
        np.exp(g[g[N] == n].pivot_table(index="model.width", columns="model.modes", values="log_gain"))
        for n in n_values
    ]
    norm = LogNorm(min(x.min().min() for x in grids), max(x.max().max() for x in grids))
    fig, axes = panel_grid([f"N={human_count(n)}" for n in n_values], "Fine-tuning gain (scratch / fine-tuned error)",
                           loglog=False, legends=False)  # fmt: skip
    for i, (ax, grid) in enumerate(zip(axes, grids, strict=True)):
        last = i == len(grids) - 1
        sns.heatmap(grid, ax=ax, annot=True, fmt=".1f", cmap="crest", norm=norm, cbar=last, annot_kws={"size": 6},
                    cbar_kws={"label": "gain"} if last else None)  # fmt: skip
        ax.invert_yaxis()
        ax.grid(False)
    return FigureResult(fig)


@paper_style
def mixed_pretraining(runs: pd.DataFrame, fits: CurveFits | None = None) -> FigureResult:
    """Per downstream system: fine-tuned from the mixture vs from the same system vs scratch (largest model)."""
    pts, fits = _setup(runs, fits)
    strategy = primary_strategy(pts)
    pts = pts[(pts["stage"] == "scratch") | ((pts["stage"] == "finetune") & (pts["pretrain.strategy"] == strategy))]
    is_mixed = pts["pretrain.system"] == "mixed"
    if not is_mixed.any():
        return FigureResult(None, "no fine-tuning run was pretrained on the mixture (pretrain.system: mixed)")
    if pts[is_mixed].groupby(PANEL)[N].nunique().max() < 2:
        return FigureResult(None, NO_N)
    groups = {
        "mixed": lambda r: r["pretrain.system"] == "mixed",
        "finetune": lambda r: (r["stage"] == "finetune") & (r["pretrain.system"] == r["downstream.system"]),
        "scratch": lambda r: r["stage"] == "scratch",
    }
    panels = {}
    for title, sub in _panel_rows(pts[pts[PANEL[0]].isin(pts.loc[is_mixed, PANEL[0]])]):
        if not (sub["pretrain.system"] == "mixed").any():
            continue  # a shift of this system the mixture was not fine-tuned at
        big = _largest(sub, among=sub[sub["pretrain.system"] == "mixed"])
        panels[f"{title}, {human_count(big['n_params'].mean())} params"] = [
            s
            for name, pick in groups.items()
            for s in _series(big[pick(big)], fits, stage_color(name), STAGE_LABELS[name])
        ]
    title = f"Mixed-operator pretraining ({strategy}), largest model"
    return FigureResult(_curves_figure(panels, title, f"test {metric_label(runs)}"))


@paper_style
def strategies(runs: pd.DataFrame, fits: CurveFits | None = None) -> FigureResult:
    """Error vs N per pretraining strategy and augmentation (scratch as strategy none), largest model, per panel."""
    pts, names, skip = strategy_points(runs)
    if skip:
        return FigureResult(None, skip)
    if pts[pts["stage"] == "finetune"].groupby(PANEL)[N].nunique().max() < 2:
        return FigureResult(None, NO_N)
    fits = fits if fits is not None else fit_curves(runs, n_boot=FIGURE_BOOT)
    colors = dict(zip(names, ramp("colorblind", len(names) + 2)[2:], strict=True)) | {
        SCRATCH_LABEL: stage_color("scratch")}  # fmt: skip
    augments = sorted(pts["augment"].unique())
    downstream_aug = sorted({aug.split("/")[-1] for aug in augments})  # scratch's "-/scale" is marked as "scale/scale"
    markers = {aug: "os^Dv<>P"[downstream_aug.index(aug.split("/")[-1]) % 8] for aug in augments}
    panels = {}
    for title, sub in _panel_rows(pts):
        big = _largest(sub)
        panels[f"{title}, {human_count(big['n_params'].mean())} params"] = [
            replace(s, marker=markers[aug])
            for name in [*names, SCRATCH_LABEL]
            for aug in augments
            for s in _series(big[(big["strategy"] == name) & (big["augment"] == aug)], fits, colors[name],
                             name if len(augments) < 2 else f"{name}, augment {aug}")  # fmt: skip
        ]
    return FigureResult(_curves_figure(panels, "Pretraining strategies, largest model", f"test {metric_label(runs)}"))


@paper_style
def chosen_lr(runs: pd.DataFrame, fits: CurveFits | None = None) -> FigureResult:
    """The learning rate (``train.lr``) of each sweep point's best trial vs downstream N, fine-tuned vs scratch.

    Geometric mean over seeds (and any other varied axis) with min/max bars, one line per stage and model size,
    per system and shift; fine-tuned from the reference transfer (``primary``).
    """
    if "tune.study" not in runs or runs["tune.study"].isna().all() or "train.lr" not in runs:
        return FigureResult(None, "the sweep is not tuned (no tune.study column)")
    best = runs[runs["tune.best"].fillna(False).astype(bool)] if "tune.best" in runs else runs
    pts = primary(downstream_points(best))
    pts = pts[pts["stage"].isin(["finetune", "scratch"]) & pts["tune.study"].notna() & (pts["train.lr"] > 0)]
    if pts.empty:
        return FigureResult(None, "no tuned finetune or scratch run finished ok")
    if pts.groupby(PANEL)[N].nunique().max() < 2:
        return FigureResult(None, NO_N)
    rank = _size_rank(pts)
    pts = pts.assign(log_lr=np.log10(pts["train.lr"].astype(float)))
    panels = {}
    for title, sub in _panel_rows(pts):
        panels[title] = [
            Series(m[N].to_numpy(), 10 ** m["mean"].to_numpy(), stage_color(stage, rank[size]),
                   f"{STAGE_LABELS[stage]} {human_count(rows['n_params'].mean())}", 10 ** m["min"].to_numpy(),
                   10 ** m["max"].to_numpy(), line="-")
            for (stage, size), rows in sub.groupby(["stage", model_labels(sub)], sort=True)
            if not (m := mean_points(rows, y="log_lr")).empty
        ]  # fmt: skip
    title = "Learning rate chosen by tuning (best trial on validation; geometric mean over seeds and other axes, bars: "
    return FigureResult(_curves_figure(panels, title + "min/max)", "chosen learning rate (train.lr)"))


FIGURES: list[tuple[str, Callable[..., FigureResult]]] = [
    ("error_vs_n", error_vs_n),
    ("gain_vs_size", gain_vs_size),
    ("efficiency_vs_target", efficiency_vs_target),
    ("gain_heatmap", gain_heatmap),
    ("mixed_pretraining", mixed_pretraining),
    ("strategies", strategies),
    ("chosen_lr", chosen_lr),
    ("rollout", rollout_errors),
]
