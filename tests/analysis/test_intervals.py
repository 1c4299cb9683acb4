"""Intervals that mean what they say: the rule that picks a fit's resampling and labels its interval, the residual
bootstrap's t calibration against the textbook interval, coverage on synthetic curves with known exponents (the
issue's design: two seeds used to cover half the time), and held-out predictions."""

import math

import numpy as np
import pytest
from scipy.stats import t as student_t

from analysis.coverage import coverage_cell, main
from analysis.curves import fit_curves
from analysis.holdout import holdout_table
from analysis.intervals import (
    CLUSTER,
    MEANS,
    NONE,
    RANGE,
    RESIDUAL,
    Basis,
    combine,
    fit_basis,
    mean_draws,
    ratio_interval,
    seed_interval,
)
from analysis.laws import fit_laws
from analysis.powerlaw import fit
from analysis.synthetic import synthetic_runs

N4 = (8, 32, 128, 512)
N6 = (8, 16, 32, 64, 128, 256)


def _seeds(count: int, per: int) -> np.ndarray:
    return np.repeat(np.arange(count), per)


def test_the_rule_labels_what_each_design_supports() -> None:
    pure = fit_basis(4, 2, 4, None)  # one seed, 4 N, a N^-b: 2 residual df, 2 N beyond the parameters
    assert pure.kind == RESIDUAL and pure.valid and pure.label == "95 % (residual bootstrap, t with 2 df)"
    floor = fit_basis(8, 3, 4, _seeds(2, 4))  # two seeds, 4 N, with a floor: noise estimated, form unchecked
    assert floor.kind == RESIDUAL and not floor.valid and floor.df == 5
    assert floor.label.endswith("not a 95 % interval: 3 parameters from 4 distinct N leave 1 degree of freedom to "
                                "check the law's form (needs 2)")  # fmt: skip
    one_df = fit_basis(4, 3, 4, None)
    assert not one_df.valid and "4 runs for 3 parameters leave 1 degree of freedom for the noise" in one_df.label
    assert one_df.label.startswith("residual bootstrap, 1 df, no t correction")
    none = fit_basis(2, 2, 2, None)
    assert none.kind == NONE and none.label == "no interval: 2 runs for 2 parameters leave no residual"
    assert fit_basis(15, 3, 5, _seeds(3, 5)).valid  # a floor law from 5 distinct N and 3 seeds: a 95 % interval
    cluster = fit_basis(40, 2, 4, _seeds(10, 4))
    assert cluster.kind == CLUSTER and cluster.valid and cluster.resamples == math.comb(19, 10)
    assert cluster.level == pytest.approx(0.983, abs=1e-3)  # expanded percentile (Hesterberg 2015) at 10 seeds
    assert cluster.label == "95 % (bootstrap over 10 seeds, expanded percentile)"


def test_combined_quantities_take_the_weakest_label_and_the_widest_level() -> None:
    valid, cluster = fit_basis(12, 2, 6, _seeds(2, 6)), fit_basis(60, 2, 6, _seeds(10, 6))
    weak = fit_basis(8, 3, 4, _seeds(2, 4))
    assert combine(valid, weak) == Basis(weak.kind, weak.df, weak.resamples, valid.level, weak.why)
    assert combine(valid, cluster).level == cluster.level and combine(valid, cluster).valid
    assert combine(weak, fit_basis(2, 2, 2, None)).kind == NONE


def test_means_over_seeds_are_a_range_with_two_seeds_and_a_t_interval_from_three() -> None:
    lo, hi, basis = seed_interval(np.array([0.24, 4.56]))
    assert (lo, hi) == (0.24, 4.56) and basis.kind == RANGE and basis.label == "range over 2 seeds"
    assert not basis.valid
    values = np.array([1.0, 2.0, 3.0])
    lo, hi, basis = seed_interval(values)
    half = student_t.ppf(0.975, 2) * 1.0 / math.sqrt(3)  # sd 1
    assert (lo, hi) == pytest.approx((max(2 - half, 0), 2 + half)) and basis.valid and basis.kind == MEANS
    assert seed_interval(np.array([0.3]))[2].kind == NONE
    lo, hi, basis = ratio_interval(np.array([4.0, 6.0]), np.array([1.0, 2.0]))
    assert (lo, hi) == (2.0, 6.0) and basis.label == "range over 2 seeds"
    lo, hi, basis = ratio_interval(np.full(4, 3.0) * [1, 1.1, 0.9, 1], np.full(4, 1.0) * [1, 1.05, 0.95, 1])
    assert lo < 3.0 < hi and basis.valid


def test_mean_draws_pool_the_spread_over_n_and_are_t_distributed() -> None:
    rng = np.random.default_rng(0)
    values = [np.exp(rng.normal(0.0, 0.1, 2)) for _ in range(4)]  # 4 N x 2 seeds: 4 pooled df
    draws, basis = mean_draws(values, 20000, np.random.default_rng(1))
    assert basis.kind == MEANS and basis.df == 4 and basis.valid
    s = math.sqrt(sum(((np.log(v) - np.log(v).mean()) ** 2).sum() for v in values) / 4)
    z = (np.log(draws[:, 0]) - np.log(values[0].mean())) / (s / math.sqrt(2))
    assert np.percentile(z, 97.5) == pytest.approx(student_t.ppf(0.975, 4), rel=0.06)  # t tails, not normal ones
    single, basis = mean_draws([np.array([0.2]), np.array([0.1])], 10, rng)
    assert basis.kind == NONE and basis.label == "no interval: a single run at every N"


def test_residual_bootstrap_of_a_pure_law_matches_the_textbook_t_interval() -> None:
    # 1 % noise: every residual inside the Huber scale, so the fit is least squares on log N and the exact 95 %
    # interval of the slope is b +- t_{n-2} se; the bootstrap's must be about as wide, not the normal one
    rng = np.random.default_rng(3)
    n = np.array(N6, dtype=float)
    widths = []
    for draw in range(20):
        err = 2.0 * n**-0.5 * np.exp(rng.normal(0.0, 0.01, n.size))
        f = fit(n, err, offset=False, n_boot=2000, seed=draw)
        x, y = np.log(n), np.log(err)
        slope, intercept = np.polyfit(x, y, 1)
        resid = y - (slope * x + intercept)
        se = math.sqrt(resid @ resid / (len(n) - 2) / ((x - x.mean()) ** 2).sum())
        widths.append((f.b_ci[1] - f.b_ci[0]) / (2 * student_t.ppf(0.975, len(n) - 2) * se))
    assert 0.85 < np.median(widths) < 1.2, widths  # the normal interval would be 1.96 / 2.78 = 0.7 of it


@pytest.mark.parametrize(("design", "seeds", "floor"), [(N4, 2, 0.0), (N4, 1, 0.0), (N6, 2, 0.01), (N6, 1, 0.01)])
def test_the_default_interval_covers_the_true_exponent_with_few_seeds(design, seeds, floor) -> None:
    # the issue measured 47 % for two seeds with whole seeds resampled: a collapse fails this test
    cell = coverage_cell(design, seeds, floor, draws=60, n_boot=400, rng_seed=11)
    assert cell["95 %"] and cell["coverage"] >= 0.85, cell


def test_designs_that_cannot_support_a_95_interval_are_labelled_so() -> None:
    floor4 = coverage_cell(N4, 2, 0.01, draws=5, n_boot=200)
    assert not floor4["95 %"] and "3 parameters from 4 distinct N" in floor4["interval"]
    one_seed = coverage_cell(N4, 1, 0.01, draws=5, n_boot=200)
    assert not one_seed["95 %"] and "1 degree of freedom for the noise" in one_seed["interval"]


@pytest.mark.parametrize("seeds", [3, 10])  # residual bootstrap, seed-cluster bootstrap
def test_each_resample_carries_the_noise_level_of_the_runs(seeds: int) -> None:
    # held-out predictions add the noise of a mean at this level: it must be the runs' scatter about the fit
    n = np.tile(np.array(N6, dtype=float), seeds)
    err = 2.0 * n**-0.5 * np.exp(np.random.default_rng(seeds).normal(0.0, 0.1, n.size))
    f = fit(n, err, offset=False, n_boot=500, groups=_seeds(seeds, len(N6)))
    r = np.log(err) - np.log(f.predict(n))
    scatter = math.sqrt(r @ r / (len(r) - 2))
    assert f.basis.kind == (CLUSTER if seeds >= 10 else RESIDUAL) and 0.07 < scatter < 0.14
    assert np.median(f.sigma) == pytest.approx(scatter, rel=0.05)  # the t draws' median scale is about 1


def test_the_coverage_study_prints_its_table(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--draws", "2", "--seeds", "2", "--n-boot", "50"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| design | law | seeds | draws | coverage | median width | 95 % | interval |"
    assert len(lines) == 2 + 4 + 2 and lines[-1].startswith("4 cells, 2 draws each, n_boot 50:")
    floor = lines[3]  # the 4-N floor law: labelled for what it is
    assert floor.startswith("| 4 N (8-512) | floor c = 0.01 | 2 | 2 |") and "3 parameters from 4 distinct N" in floor


def test_held_out_predictions_cover_a_pure_law_and_miss_a_floor_the_refit_cannot_see() -> None:
    runs = synthetic_runs(shifts=("id",), sizes=((16, 4),), n_trains=(8, 32, 128, 512, 2048), seeds=(0, 1, 2),
                          zeroshot=False, noise=0.1)  # fmt: skip
    fits = fit_curves(runs, n_boot=300)
    table = holdout_table(runs, fits, fit_laws(runs, fits, n_boot=300), n_boot=300)
    curves = table[table["fit"] == "power law"]
    assert set(curves["N"]) == {2048.0} and (curves["runs"] == 3).all()
    assert curves["covered"].all(), curves  # 4 N left: the refit keeps its floor and predicts N = 2048
    # a floor the refit on 3 N cannot fit (it drops c) is missed at the largest N: the check can fail
    steep = runs.assign(test_rel_l2=np.where(runs["downstream.n_train"] == 2048, runs["test_rel_l2"] * 3,
                                             runs["test_rel_l2"]))  # fmt: skip
    fits = fit_curves(steep, n_boot=300)
    missed = holdout_table(steep, fits, fit_laws(steep, fits, n_boot=300), n_boot=300)
    assert not missed.loc[missed["fit"] == "power law", "covered"].any()
    assert (missed.loc[missed["fit"] == "power law", "ratio"] > 2).all()
