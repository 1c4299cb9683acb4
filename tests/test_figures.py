"""Figures: each draws on a sweep that varies its axes, and is skipped with a reason when the sweep does not."""

import pytest

from analysis.figures import FIGURES, fit_curves, gain_heatmap, gain_vs_size, mixed_pretraining, strategies
from analysis.figures.style import FigureResult
from analysis.synthetic import synthetic_runs

SMALL = {"sizes": ((16, 4), (32, 8)), "n_trains": (8, 64, 512, 4096), "seeds": (0, 1)}


@pytest.fixture(scope="module")
def rich():
    runs = synthetic_runs(**SMALL, strategies=("supervised", "masked"), pretrain_systems=("same", "mixed"))
    return runs, fit_curves(runs, n_boot=50)


@pytest.mark.parametrize("name", [name for name, _ in FIGURES])
def test_every_figure_draws_when_its_axes_vary(rich, name: str) -> None:
    runs, fits = rich
    result = dict(FIGURES)[name](runs, fits)
    assert isinstance(result, FigureResult)
    assert result.figure is not None, result.skip
    axes = [ax for ax in result.figure.axes if ax.get_visible() and ax.get_title()]
    assert axes and all(ax.has_data() for ax in axes)


def test_fitted_exponents_appear_in_the_legend(rich) -> None:
    runs, fits = rich
    fig = dict(FIGURES)["error_vs_n"](runs, fits).figure
    labels = [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
    assert any(": b=0." in label for label in labels)


def test_figures_whose_axes_are_not_varied_are_skipped_with_a_reason() -> None:
    runs = synthetic_runs(sizes=((16, 4),), n_trains=(8, 64, 512), seeds=(0,))
    assert strategies(runs).skip == "pretrain.strategy is not varied (supervised)"
    assert "mixture" in mixed_pretraining(runs).skip
    assert gain_vs_size(runs).figure is None and "model size" in gain_vs_size(runs).skip
    assert "not varied" in gain_heatmap(runs).skip
    one_n = synthetic_runs(n_trains=(64,), seeds=(0,))
    assert dict(FIGURES)["error_vs_n"](one_n).skip.startswith("downstream.n_train is not varied")


def test_fit_table_has_one_row_per_curve(rich) -> None:
    runs, fits = rich
    trained = runs[runs["stage"].isin(["finetune", "scratch"])]
    # scratch: 2 shifts x 2 sizes; finetune: x 2 strategies x 2 pretraining systems
    assert len(fits.table) == 2 * 2 + 2 * 2 * 2 * 2 == len(fits.fits)
    assert fits.table["converged"].all()
    assert set(fits.table["stage"]) == set(trained["stage"])
    assert {"a", "b", "c", "b_lo", "b_hi", "r2", "n_params", "strategy", "width", "modes"} <= set(fits.table.columns)
