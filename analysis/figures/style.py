"""Paper style shared by every figure: colours, the panel grid, and the one routine that draws a series."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, ParamSpec

import matplotlib
import numpy as np
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.textpath import TextToPath
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter, NullLocator

from analysis.powerlaw import PowerLawFit

matplotlib.use("Agg")

STAGE_LABELS = {"finetune": "fine-tuned", "scratch": "scratch", "zeroshot": "zero-shot", "mixed": "fine-tuned (mixed)"}
STAGE_RAMPS = {"finetune": "Blues", "scratch": "Oranges", "zeroshot": "Greys", "mixed": "Greens"}
DPI = 150  # the report saves PNGs at this resolution
IMPROVING_LABEL = "hollow: a budget-limited run (more steps would likely help)"

P = ParamSpec("P")


class FigureResult(NamedTuple):
    """A drawn figure, or None and the reason it was skipped (``skip`` is "" when drawn)."""

    figure: Figure | None
    skip: str = ""


def paper_style(fn: Callable[P, FigureResult]) -> Callable[P, FigureResult]:
    """Build the figure under seaborn's whitegrid style and paper context (rc settings apply at creation)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> FigureResult:
        with sns.axes_style("whitegrid"), sns.plotting_context("paper"):
            return fn(*args, **kwargs)

    return wrapper


def stage_color(stage: str, rank: float = 1.0) -> tuple:
    """The stage's colour family (fine-tuned blue, scratch orange, zero-shot grey, mixed green); darker = larger."""
    return matplotlib.colormaps[STAGE_RAMPS[stage]](0.45 + 0.5 * rank)


def ramp(name: str, k: int) -> list[tuple]:
    """``k`` colours of a sequential seaborn palette."""
    return list(sns.color_palette(name, max(k, 1)))


def human_count(n: float) -> str:
    """67K, 1.2M, 268M: parameter or sample counts for labels."""
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if n >= div:
            return f"{n / div:.3g}{suffix}"
    return f"{n:.3g}"


@dataclass(frozen=True)
class Series:
    """One thing to draw in a panel: points (with min/max bars), a line, or a horizontal level (x is None)."""

    x: np.ndarray | None
    y: np.ndarray
    color: tuple
    label: str | None
    lo: np.ndarray | None = None
    hi: np.ndarray | None = None
    fit: PowerLawFit | None = None
    marker: str = "o"
    line: str = ""
    hollow: np.ndarray | None = None  # points drawn hollow (e.g. budget-limited runs)


def panel_grid(
    titles: list[str], suptitle: str, *, loglog: bool = True, legends: bool = True
) -> tuple[Figure, list[Axes]]:
    """A constrained-layout grid of up to 3 columns, one titled panel per entry; log-log axes by default."""
    ncols = min(3, len(titles))
    nrows = -(-len(titles) // ncols)
    width = 4.8 if legends else 3.1  # room for a legend right of each panel
    fig = Figure(figsize=(width * ncols + 0.4, 2.6 * nrows + 0.4), layout="constrained")
    axes = list(fig.subplots(nrows, ncols, squeeze=False).ravel())
    for ax in axes[len(titles) :]:
        ax.set_visible(False)
    for ax, title in zip(axes, titles, strict=False):
        ax.set_title(wrap(title, (width - 1.4 if legends else width - 0.6) * 72, matplotlib.rcParams["axes.titlesize"]))
        if loglog:
            ax.set_xscale("log")
            ax.set_yscale("log")
    fig.suptitle(wrap(suptitle, (width * ncols + 0.1) * 72, matplotlib.rcParams["figure.titlesize"]))
    return fig, axes[: len(titles)]


def wrap(text: str, width_pt: float, size: float | str) -> str:
    """``text`` broken at spaces into lines no wider than ``width_pt`` points at font ``size`` (measured from the
    glyphs, so without a renderer); a single word wider than that stays whole."""
    font = FontProperties(size=size)
    lines: list[str] = []
    for word in text.split(" "):
        trial = f"{lines[-1]} {word}" if lines else word
        if lines and _TEXT.get_text_width_height_descent(trial, font, ismath=False)[0] <= width_pt:
            lines[-1] = trial
        else:
            lines.append(word)
    return "\n".join(lines)


_TEXT = TextToPath()
_PLAIN = FuncFormatter(lambda value, _: f"{value:g}")


def draw_panel(ax: Axes, series: list[Series], xlabel: str, ylabel: str, hollow_label: str = IMPROVING_LABEL) -> None:
    """Draw every series of one panel, fitted curves dashed with their bootstrap band, hollow points (explained in
    the legend by ``hollow_label``), and its legend."""
    for s in series:
        if s.x is None:
            ax.axhline(float(np.mean(s.y)), color=s.color, linestyle=":", linewidth=1.2, label=s.label)
            continue
        label = s.label
        if s.fit is not None and label is not None:
            flag = "" if s.fit.converged else ", not converged"
            ci = "" if s.fit.basis.valid else " not 95 %"  # what the interval is: the report's fit table
            label = f"{label}: b={s.fit.b:.2f} [{s.fit.b_ci[0]:.2f}, {s.fit.b_ci[1]:.2f}{ci}]{flag}"
        yerr = None if s.lo is None else np.vstack([s.y - s.lo, s.hi - s.y])
        ax.errorbar(
            s.x, s.y, yerr=yerr, color=s.color, label=label, marker=s.marker or "none", markersize=3.5,
            linestyle=s.line or "none", linewidth=1.2, elinewidth=0.7, capsize=1.5,
        )  # fmt: skip
        if s.hollow is not None and s.hollow.any():
            ax.plot(s.x[s.hollow], s.y[s.hollow], linestyle="none", marker=s.marker or "o", markersize=3.5,
                    markerfacecolor="white", markeredgecolor=s.color, markeredgewidth=0.9, zorder=3)  # fmt: skip
        if s.fit is not None:
            grid = np.geomspace(np.min(s.x), np.max(s.x), 64)
            ax.plot(grid, s.fit.predict(grid), linestyle="--", color=s.color, linewidth=1.0)
            lo, hi = s.fit.band(grid)
            ax.fill_between(grid, lo, hi, color=s.color, alpha=0.15, linewidth=0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    for axis, (lo, hi) in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
        if axis.get_scale() == "log" and hi > 10 * lo:  # whole decades labelled: drop the minor-tick labels
            axis.set_minor_formatter(NullFormatter())
            minor = axis.get_tick_params(which="minor")
            first, second = ("bottom", "top") if axis.axis_name == "x" else ("left", "right")
            if not (minor.get(first, True) or minor.get(second, False) or minor.get("gridOn", False)):
                axis.set_minor_locator(NullLocator())  # unlabelled and unmarked (whitegrid): they only cost time
        elif axis.get_scale() == "log":  # under a decade: a few plain numbers, not a crowded 2x10^1 3x10^1 ...
            axis.set_minor_locator(LogLocator(subs=(2.0, 3.0, 5.0) if hi > 4 * lo else np.arange(2.0, 10.0)))
            axis.set_major_formatter(_PLAIN)
            axis.set_minor_formatter(_PLAIN)
    if any(s.hollow is not None and s.hollow.any() for s in series):
        ax.plot([], [], linestyle="none", marker="o", markersize=3.5, markerfacecolor="white", markeredgecolor="0.3",
                label=hollow_label)  # fmt: skip
    if any(s.label for s in series):
        ax.legend(fontsize="xx-small", frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
