"""The papers' figures (``FIGURES``: name -> function of the ok runs) and the curve fits they draw."""

from analysis.figures.curves import CurveFits, fit_curves
from analysis.figures.plots import (
    FIGURES,
    efficiency_vs_target,
    error_vs_n,
    gain_heatmap,
    gain_vs_size,
    mixed_pretraining,
    strategies,
)
from analysis.figures.style import FigureResult

__all__ = [
    "FIGURES",
    "CurveFits",
    "FigureResult",
    "efficiency_vs_target",
    "error_vs_n",
    "fit_curves",
    "gain_heatmap",
    "gain_vs_size",
    "mixed_pretraining",
    "strategies",
]
