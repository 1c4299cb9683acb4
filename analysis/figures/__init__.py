"""The papers' figures (``FIGURES``: name -> function of the ok runs), the curve fits they draw and the strategy
table."""

from analysis.figures.curves import CurveFits, fit_curves
from analysis.figures.plots import (
    FIGURES,
    chosen_lr,
    efficiency_vs_target,
    error_vs_n,
    gain_heatmap,
    gain_vs_size,
    mixed_pretraining,
    strategies,
)
from analysis.figures.strategy import strategy_table
from analysis.figures.style import FigureResult

__all__ = [
    "FIGURES",
    "CurveFits",
    "FigureResult",
    "chosen_lr",
    "efficiency_vs_target",
    "error_vs_n",
    "fit_curves",
    "gain_heatmap",
    "gain_vs_size",
    "mixed_pretraining",
    "strategies",
    "strategy_table",
]
