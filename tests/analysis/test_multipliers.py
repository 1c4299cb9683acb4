"""Data-efficiency multipliers with their intervals: rounding to what an interval supports, the measured multiplier's
t draws over seeds, the fit-based one's paired bootstrap, and extrapolated values marked as such."""

import math

import numpy as np
import pytest

from analysis.figures import fit_curves
from analysis.multipliers import format_estimate, multiplier_display, round_to_interval, small_n_multipliers
from analysis.synthetic import synthetic_runs

NAN, INF = math.nan, math.inf


@pytest.mark.parametrize(
    ("value", "lo", "hi", "expected"),
    [
        (140.3, 112.7, 188.4, ("140", "110", "190")),  # half-width 38: tens
        (6.48, 6.21, 6.74, ("6.5", "6.2", "6.7")),  # half-width 0.27: tenths
        (17.6, 15.2, 20.1, ("18", "15", "20")),
        (300.0, 52.0, 3010.0, ("300", "50", "3000")),  # every bound keeps one significant digit
        (9.99, 9.98, 10.0, ("9.99", "9.98", "10.00")),
        (29.7, 7.0, 3.1e17, ("30", "7", "3e+17")),  # large numbers in e-notation, not 18 digits
    ],
)
def test_round_to_interval_keeps_the_digits_the_interval_supports(value, lo, hi, expected) -> None:
    assert round_to_interval(value, lo, hi) == expected


def test_format_estimate_states_open_and_missing_intervals() -> None:
    assert format_estimate(140.3, 112.7, 188.4) == "~140x (110-190)"
    assert format_estimate(143.0, 110.0, INF) == "~140x (>=110)"  # scratch never reaches it in some resamples
    assert format_estimate(17.63, NAN, NAN) == "~18x"  # no interval: two significant digits
    assert format_estimate(9.99, NAN, NAN) == "~10x"


def test_measured_multiplier_interval_resamples_seeds_and_contains_the_true_ratio() -> None:
    # synthetic scratch 2 N^-0.5 + c, fine-tuned a N^-0.5 + c: scratch needs (2/a)^2 times the samples at any error
    runs = synthetic_runs(shifts=("id",), seeds=(0, 1, 2, 3))
    table = small_n_multipliers(runs, fit_curves(runs, n_boot=200), n_boot=200)
    small, large = table[table["width"] == 16], table[table["width"] == 32]
    truth_small, truth_large = (2 / 0.3) ** 2, (2 / 0.1) ** 2  # a = 2 * 0.1 * (1.5 - size rank)
    assert list(small["N"]) == [8, 32] and (small["runs_per_n"] == 4).all()
    assert ((small["interp_lo"] <= truth_small) & (truth_small <= small["interp_hi"])).all()
    assert ((small["fit_lo"] <= truth_small) & (truth_small <= small["fit_hi"])).all()
    assert (small["interp_hi"] - small["interp_lo"] < 0.5 * truth_small).all()
    assert not small["fit_extrapolated"].any()
    # the large model's scratch would need 400 x 8 > 2048 samples: not measured, extrapolated from the fit
    assert large["multiplier_interp"].isna().all() and large["fit_extrapolated"].all()
    assert (large["n_scratch_fit"] > 2048).all() and np.isfinite(large["multiplier_fit"]).all()
    assert truth_large < large["multiplier_fit"].iloc[0] < 2 * truth_large
    shown = multiplier_display(table)
    assert list(shown.columns[-3:]) == ["measured (interpolated)", "from the fits", "notes"]
    assert table["interp_ci"].str.startswith("95 % (t over seeds").all()
    assert shown["measured (interpolated)"].iloc[0].startswith("~4") and "(" in shown["measured (interpolated)"].iloc[0]
    assert (shown.loc[large.index, "from the fits"].str.endswith(", extrapolated")).all()
    assert (shown.loc[large.index, "measured (interpolated)"] == "outside the measured range").all()


def test_a_single_seed_gives_no_measured_interval_and_says_so() -> None:
    runs = synthetic_runs(shifts=("id",), seeds=(0,))
    table = small_n_multipliers(runs, fit_curves(runs, n_boot=50), n_boot=50)
    measured = table[table["multiplier_interp"].notna()]
    assert not measured.empty and measured["interp_lo"].isna().all() and (measured["runs_per_n"] == 1).all()
    text = multiplier_display(table).loc[measured.index, "measured (interpolated)"]
    assert text.str.endswith("[no interval: a single run at every N]").all()
    again = small_n_multipliers(runs, fit_curves(runs, n_boot=50), n_boot=50)
    assert again.equals(table)


def test_a_flat_fine_tuned_start_gives_each_n_its_own_multiplier_inside_its_interval() -> None:
    # early stopping kept the loaded weights at both small N (the reference study's in-distribution curve): the same
    # error at N = 8 and 32 is reached by scratch at one n_s, so the multipliers are n_s / 8 and n_s / 32
    runs = synthetic_runs(shifts=("id",), sizes=((16, 4),), seeds=(0, 1, 2, 3, 4))
    ft8 = (runs["stage"] == "finetune") & (runs["downstream.n_train"] == 8)
    ft32 = (runs["stage"] == "finetune") & (runs["downstream.n_train"] == 32)
    runs.loc[ft8, "test_rel_l2"] = runs.loc[ft32, "test_rel_l2"].to_numpy()
    table = small_n_multipliers(runs, fit_curves(runs, n_boot=200), n_boot=200).set_index("N")
    assert table.loc[8, "err_finetune"] == table.loc[32, "err_finetune"]
    assert table.loc[8, "multiplier_interp"] == pytest.approx(4 * table.loc[32, "multiplier_interp"])
    inside = (table["interp_lo"] <= table["multiplier_interp"]) & (table["multiplier_interp"] <= table["interp_hi"])
    assert inside.all()
