"""Figures: each draws on a sweep that varies its axes, and is skipped with a reason when the sweep does not."""

import json

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from analysis.figures import FIGURES, fit_curves, gain_heatmap, gain_vs_size, mixed_pretraining, strategies
from analysis.figures.plots import chosen_lr
from analysis.figures.rollout import NO_ROLLOUTS, rollout_errors
from analysis.figures.strategy import SCRATCH_LABEL, strategy_table
from analysis.figures.style import IMPROVING_LABEL, FigureResult, wrap
from analysis.synthetic import synthetic_runs, tuned_runs

SMALL = {"sizes": ((16, 4), (32, 8)), "n_trains": (8, 64, 512, 4096), "seeds": (0, 1)}


def with_rollouts(runs: pd.DataFrame, steps: int = 6) -> pd.DataFrame:
    """The runs as if next_step runs: each downstream row's per-step rollout error grows to its test error."""
    growth = np.linspace(0.2, 1.0, steps)
    rollouts = [json.dumps((err * growth).tolist()) if stage != "pretrain" else None
                for err, stage in zip(runs["test_rel_l2"], runs["stage"], strict=True)]
    return runs.assign(rollout_step_rel_l2=rollouts)


@pytest.fixture(scope="module")
def rich():
    runs = synthetic_runs(**SMALL, strategies=("supervised", "masked"), pretrain_systems=("same", "mixed"))
    runs = tuned_runs(runs, lrs=(3e-4, 1e-3, 3e-3))
    runs = runs[runs["tune.best"]].reset_index(drop=True)  # what load_runs keeps: each study's best trial
    return with_rollouts(runs), fit_curves(runs, n_boot=50)


def test_the_rollout_figure_draws_each_strategy_at_the_largest_n_and_is_skipped_without_rollouts(rich) -> None:
    runs, _ = rich
    fig = rollout_errors(runs).figure
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["poisson / id, N=4.1K", "poisson / moderate, N=4.1K"]
    lines = {c.get_label(): c.lines[0] for c in panels[0].containers}
    assert list(lines) == ["masked from mixed", "masked from poisson", "none (scratch)", "supervised from mixed",
                           "supervised from poisson", "zero-shot from mixed", "zero-shot from poisson"]
    rows = runs[(runs["stage"] == "scratch") & (runs["downstream.shift"] == "id") & (runs["downstream.n_train"] == 4096)
                & (runs["model.width"] == 32)]  # fmt: skip
    expected = np.mean([json.loads(r) for r in rows["rollout_step_rel_l2"]], axis=0)
    np.testing.assert_allclose(lines["none (scratch)"].get_ydata(), expected)
    assert rollout_errors(runs.drop(columns="rollout_step_rel_l2")).skip == NO_ROLLOUTS


@pytest.mark.parametrize("name", [name for name, _ in FIGURES])
def test_every_figure_draws_when_its_axes_vary(rich, name: str) -> None:
    runs, fits = rich
    result = dict(FIGURES)[name](runs, fits)
    assert isinstance(result, FigureResult)
    assert result.figure is not None, result.skip
    axes = [ax for ax in result.figure.axes if ax.get_visible() and ax.get_title()]
    assert axes and all(ax.has_data() for ax in axes)
    fig = result.figure
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw_without_rendering()  # runs the constrained layout
    width = fig.bbox.width
    for text in [fig._suptitle, *(ax.title for ax in axes)]:  # every title inside the figure, none cut off
        box = text.get_window_extent(renderer)
        assert box.x0 >= 0 and box.x1 <= width, (text.get_text(), box, width)


def test_long_titles_are_wrapped_at_spaces() -> None:
    text = "Data-efficiency multiplier, largest model (solid: measured, dashed: fit)"
    assert wrap(text, 1000, 10) == text
    lines = wrap(text, 200, 10).split("\n")
    assert len(lines) == 2 and " ".join(lines) == text
    assert wrap("unbreakable", 1, 10) == "unbreakable"


def test_chosen_lr_follows_the_best_trials_and_is_skipped_on_untuned_sweeps(rich) -> None:
    runs, _ = rich
    fig = chosen_lr(runs).figure
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["poisson / id", "poisson / moderate"]
    labels = [t.get_text() for t in panels[0].get_legend().get_texts()]
    assert labels == ["fine-tuned 67.3K", "fine-tuned 1.06M", "scratch 67.3K", "scratch 1.06M"]
    ft = runs[(runs["stage"] == "finetune") & (runs["pretrain.system"] == "poisson") & (runs["model.width"] == 16)
              & (runs["pretrain.strategy"] == "supervised") & (runs["downstream.shift"] == "id")]  # fmt: skip
    expected = 10 ** np.log10(ft["train.lr"]).groupby(ft["downstream.n_train"]).mean()  # geometric mean over seeds
    np.testing.assert_allclose(panels[0].get_lines()[0].get_ydata(), expected.to_numpy())
    assert ft["train.lr"].nunique() > 1  # the synthetic optimum moves with N: not a constant line
    assert panels[0].get_xscale() == "log" and panels[0].get_yscale() == "log"
    untuned = synthetic_runs(**SMALL)
    assert chosen_lr(untuned).skip == "the sweep is not tuned (no tune.study column)"
    assert chosen_lr(untuned.assign(**{"tune.study": None})).figure is None


def test_strategy_table_and_figure_show_scratch_as_strategy_none_per_augmentation() -> None:
    runs = synthetic_runs(sizes=((8, 4),), n_trains=(16, 64), seeds=(0,), zeroshot=False,
                          strategies=("supervised", "masked"), augments=("none", "scale"))  # fmt: skip
    table, skip = strategy_table(runs)
    assert skip == "" and list(table.columns) == ["shift", "strategy", "augmentation", "N=16", "N=64"]
    assert len(table) == 2 * 3 * 2  # shifts x (2 strategies + scratch) x augmentations
    assert table["strategy"].tolist()[:6] == ["masked"] * 2 + ["supervised"] * 2 + [SCRATCH_LABEL] * 2
    assert table["augmentation"].tolist()[:6] == ["none/none", "scale/scale"] * 2 + ["-/none", "-/scale"]
    scratch = runs[(runs["stage"] == "scratch") & (runs["downstream.shift"] == "id")
                   & (runs["train.augment"] == "scale")]  # fmt: skip
    expected = scratch.groupby("downstream.n_train")["test_rel_l2"].mean().to_numpy()
    np.testing.assert_allclose(table.loc[5, ["N=16", "N=64"]].to_numpy(float), expected)
    fig = strategies(runs).figure
    labels = [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
    assert any(label.startswith(f"{SCRATCH_LABEL}, augment -/scale: b=") for label in labels)
    assert any(label.startswith("masked, augment scale/scale: b=") for label in labels)
    downstream_only = runs.assign(**{"pretrain.train.augment": runs["pretrain.train.augment"].where(
        runs["pretrain.train.augment"].isna(), "none")})  # fmt: skip
    assert set(strategy_table(downstream_only)[0]["augmentation"]) == {"none", "scale"}
    assert strategy_table(synthetic_runs(**SMALL)) == (None, "pretrain.strategy is not varied (supervised)")


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


def _hollow_x(fig) -> set[float]:
    """x of every hollow (white-faced) marker drawn in the figure's panels."""
    return {float(x) for ax in fig.axes for line in ax.get_lines() if line.get_markerfacecolor() == "white"
            for x in line.get_xdata()}  # fmt: skip


def test_budget_limited_runs_are_drawn_hollow_and_explained_in_the_legend(rich) -> None:
    runs, fits = rich
    assert set(runs.loc[runs["budget_limited"], "downstream.n_train"]) == {8}  # synthetic: scratch at the smallest N
    fig = dict(FIGURES)["error_vs_n"](runs, fits).figure
    assert _hollow_x(fig) == {8.0}
    assert IMPROVING_LABEL in _legend_labels(fig)
    unknown = runs.drop(columns=["budget_limited"])  # an older sweep: convergence not recorded, nothing hollow
    fig = dict(FIGURES)["error_vs_n"](unknown, fits).figure
    assert _hollow_x(fig) == set() and IMPROVING_LABEL not in _legend_labels(fig)


def _legend_labels(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]


def test_the_mixture_figure_leaves_out_shifts_the_mixture_was_not_fine_tuned_at(rich) -> None:
    runs, fits = rich
    shifted = runs["downstream.shift"] == "moderate"
    assert shifted.any()
    in_distribution = runs[~(shifted & (runs["pretrain.system"] == "mixed"))]  # as sweeps/reference.yaml
    fig = mixed_pretraining(in_distribution, fits).figure
    assert fig is not None and len([ax for ax in fig.axes if ax.has_data()]) == 1  # poisson, id
    assert len([ax for ax in mixed_pretraining(runs, fits).figure.axes if ax.has_data()]) == 2
