"""Power-law fits: recovery of known exponents, bootstrap coverage, inverse, efficiency multipliers."""

import warnings

import numpy as np
import pytest

from analysis.load import ReportError
from analysis.powerlaw import efficiency_multiplier, efficiency_multiplier_interp, fit, power_law_model
from analysis.robust import lm

N = 2.0 ** np.arange(3, 14)


def test_pure_power_law_recovers_exact_slope() -> None:
    f = fit(N, 3.0 * N**-0.7, offset=False, n_boot=50)
    assert f.converged
    assert f.b == pytest.approx(0.7, abs=1e-6)
    assert f.a == pytest.approx(3.0, rel=1e-6)
    assert f.c == 0.0
    assert f.r2 == pytest.approx(1.0)


def test_offset_fit_recovers_b_inside_its_interval_in_90_percent_of_trials() -> None:
    a, b, c = 1.5, 0.6, 0.005
    n = np.tile(N, 3)
    hits = 0
    for trial in range(50):
        rng = np.random.default_rng(trial)
        err = (a * n**-b + c) * np.exp(rng.normal(0.0, 0.05, n.size))
        f = fit(n, err, n_boot=150, seed=trial)
        assert f.converged, f.message
        hits += f.b_ci[0] <= b <= f.b_ci[1]
    assert hits >= 45


def test_groups_resample_whole_seeds_and_are_deterministic() -> None:
    n, seeds = np.tile(N, 4), np.repeat(np.arange(4), len(N))
    err = (2.0 * n**-0.5 + 0.01) * np.exp(np.random.default_rng(0).normal(0, 0.05, n.size))
    f1 = fit(n, err, n_boot=100, seed=3, groups=seeds)
    f2 = fit(n, err, n_boot=100, seed=3, groups=seeds)
    assert np.array_equal(f1.boot, f2.boot)
    assert f1.b_ci[0] <= f1.b <= f1.b_ci[1]
    lo, hi = f1.band(N)
    assert np.all(lo <= hi)


# Four points at equally spaced log N, each 0.3 (log) off 2 N^-0.5 with signs that cancel (+ - - + about the line):
# every point lies beyond the Huber scale, so the Huber cost is the same for every line that keeps them there (b from
# about 0.42 to 0.58). Least squares picks the line itself, and so must the fit, whatever the optimiser's path.
FLAT_N = np.array([8.0, 32.0, 128.0, 512.0])
FLAT_SIGNS = np.array([1.0, -1.0, -1.0, 1.0])


@pytest.mark.parametrize("offset", [False, True])
def test_a_flat_huber_optimum_gives_the_least_squares_fit_whatever_the_point_order(offset: bool) -> None:
    # with an offset the signs are flipped (- + + -), so that c is pushed onto its bound 0 and the flat set remains
    err = 2.0 * FLAT_N**-0.5 * np.exp(0.3 * (-FLAT_SIGNS if offset else FLAT_SIGNS))
    fits = [fit(FLAT_N[order], err[order], offset=offset, n_boot=100, seed=1)
            for order in ([0, 1, 2, 3], [3, 2, 1, 0], [1, 3, 0, 2], [2, 0, 3, 1])]  # fmt: skip
    for f in fits:
        assert f.b == pytest.approx(0.5, abs=1e-5) and f.a == pytest.approx(2.0, rel=1e-4), (f.a, f.b)
        assert [f.a, f.b, f.c] == pytest.approx([fits[0].a, fits[0].b, fits[0].c], rel=1e-12, abs=1e-15)
        assert f.c == pytest.approx(0.0, abs=1e-9)
        assert np.array_equal(f.boot, fits[0].boot)  # the bootstrap draws the same points in any input order


def test_refits_from_anywhere_on_a_flat_huber_optimum_reach_the_same_fit() -> None:
    err = 2.0 * FLAT_N**-0.5 * np.exp(0.3 * FLAT_SIGNS)
    x, y = np.log(FLAT_N), np.log(err)
    b0 = np.array([0.42, 0.46, 0.5, 0.54, 0.58])  # each on the flat optimum: log a keeps the mean residual at 0
    starts = np.column_stack([np.mean(y + b0[:, None] * x, axis=1), b0])
    bounds = np.tile([-50.0, 0.0], (5, 1)), np.tile([50.0, 5.0], (5, 1))
    p = lm(power_law_model(x, offset=False), np.arange(4), y, np.ones((5, 4)), starts, *bounds)
    assert p[:, 1] == pytest.approx(np.full(5, 0.5), abs=2e-5)  # the flat set spans b = 0.42-0.58: without the
    assert np.exp(p[:, 0]) == pytest.approx(np.full(5, 2.0), rel=1e-4)  # tie break each start would stay where it is


def test_predict_and_inverse() -> None:
    f = fit(N, 2.0 * N**-0.5 + 0.01, n_boot=0)
    assert f.predict(N) == pytest.approx(2.0 * N**-0.5 + 0.01, rel=1e-4)
    assert f.n_for(f.predict(100.0)) == pytest.approx(100.0, rel=1e-6)
    assert np.isnan(f.n_for(f.c * 0.5))  # below the floor: unreachable
    assert np.isnan(f.a_ci[0])  # no bootstrap, no interval


def test_efficiency_multiplier_matches_the_analytic_ratio() -> None:
    scratch = fit(N, 2.0 * N**-0.5, offset=False, n_boot=0)
    finetune = fit(N, 0.2 * N**-0.4, offset=False, n_boot=0)
    targets = np.array([0.05, 0.02, 0.01])
    analytic = (targets / 2.0) ** (-1 / 0.5) / (targets / 0.2) ** (-1 / 0.4)
    assert efficiency_multiplier(scratch, finetune, targets) == pytest.approx(analytic, rel=1e-5)


def test_interpolated_multiplier_is_exact_on_power_laws_and_nan_outside() -> None:
    err_s, err_f = 2.0 * N**-0.5, 0.2 * N**-0.4
    inside = np.array([0.05, 0.03])  # both curves measured these errors
    analytic = (inside / 2.0) ** (-1 / 0.5) / (inside / 0.2) ** (-1 / 0.4)
    got = efficiency_multiplier_interp(N, err_s, N, err_f, inside)
    assert got == pytest.approx(analytic, rel=1e-9)
    outside = np.array([1.0, 0.001])  # above the first point / below every measured error
    assert np.isnan(efficiency_multiplier_interp(N, err_s, N, err_f, outside)).all()
    diverged = 1e11 * (1 - 0.01 * np.arange(len(N)))  # a nearly flat curve far above the targets: nan, no overflow
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(efficiency_multiplier_interp(N, err_s, N, diverged, inside)).all()


def test_too_few_points_or_bad_errors_are_clear_errors() -> None:
    with pytest.raises(ReportError, match="needs >= 3 distinct n"):
        fit([8, 16], [0.5, 0.4])
    with pytest.raises(ReportError, match="errors > 0"):
        fit(N, np.zeros_like(N))
