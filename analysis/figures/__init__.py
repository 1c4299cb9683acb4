"""The papers' figures (``FIGURES``: name -> function of the ok runs), the figures of the transfer laws
(``LAW_FIGURES``: name -> function of the ok runs, their curve fits and laws), the curve fits they draw, the
strategy table and the rollout errors of the time-dependent next_step task."""

from analysis.curves import CurveFits, fit_curves
from analysis.figures.law_figures import LAW_FIGURES, data_transferred, joint_law
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
from analysis.figures.rollout import rollout_errors
from analysis.figures.strategy import strategy_table
from analysis.figures.style import FigureResult

__all__ = [
    "FIGURES",
    "LAW_FIGURES",
    "CurveFits",
    "FigureResult",
    "chosen_lr",
    "data_transferred",
    "efficiency_vs_target",
    "error_vs_n",
    "fit_curves",
    "gain_heatmap",
    "gain_vs_size",
    "joint_law",
    "mixed_pretraining",
    "rollout_errors",
    "strategies",
    "strategy_table",
]
