"""Claims computed, not typed: the claims table of a synthetic sweep holds the numbers a reading quotes, with their
intervals and runs, and check_readings fails a reading whose quoted number drifts from its claim, is more precise
than its interval supports, names an unknown claim, or quotes a measured number without a marker."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.claims import check_readings, claims_for
from analysis.synthetic import joint_runs, synthetic_runs, tuned_runs, write_synthetic_sweep

RUNS = {"systems": ("poisson",), "shifts": ("id",), "sizes": ((16, 4), (32, 8)),
        "n_trains": (8, 32, 128, 512, 2048), "seeds": (0, 1, 2)}  # fmt: skip
LRS = (1e-3, 3e-3, 1e-2)  # the tuning grid


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame, pd.DataFrame]:
    runs = tuned_runs(synthetic_runs(**RUNS), lrs=LRS)
    folder = write_synthetic_sweep(tmp_path_factory.mktemp("claims") / "syn", runs)
    return folder, runs, claims_for(folder, n_boot=200)


def _claim(claims: pd.DataFrame, cid: str) -> pd.Series:
    return claims.set_index("id").loc[cid]


def test_claims_are_the_report_s_numbers_with_their_runs_and_intervals(sweep) -> None:
    folder, runs, claims = sweep
    assert claims["id"].is_unique and list(claims.columns) == ["id", "quantity", "value", "lo", "hi", "ci", "runs",
                                                               "ref", "display"]  # fmt: skip
    best = runs[runs["tune.best"].fillna(True).astype(bool)]
    at = best[(best["stage"] == "scratch") & (best["downstream.shift"] == "id") & (best["model.width"] == 32)
              & (best["downstream.n_train"] == 8)]  # fmt: skip
    err = _claim(claims, "err.scratch.poisson.id.w32m8.n8")
    assert err["value"] == pytest.approx(at["test_rel_l2"].mean()) and err["runs"] == 3
    assert err["lo"] < err["value"] < err["hi"] and err["ci"] == "95 % (t over seeds, 2 df)"
    assert err["ref"] == "system poisson, shift id, stage scratch, width 32, modes 8, N 8"
    ft = _claim(claims, "err.finetune.poisson.id.w32m8.n8")
    gain = _claim(claims, "gain.poisson.id.w32m8.n8")
    assert gain["value"] == pytest.approx(err["value"] / ft["value"]) and gain["display"].endswith("x)")
    assert _claim(claims, "b.scratch.poisson.id.w32m8")["ci"].startswith("95 % (residual bootstrap, t with")
    budget = _claim(claims, "budget.scratch.n8")  # synthetic scratch at the smallest N is budget-limited
    assert budget["display"] == "6 of 6" and _claim(claims, "budget.scratch.n32")["display"] == "0 of 6"
    assert _claim(claims, "step0.n8")["display"] == "0 of 6"
    edges = claims[claims["id"].str.startswith("edge.train.lr.")]
    assert set(edges["id"]) == {f"edge.train.lr.{s}.{e}" for s in ("finetune", "scratch") for e in ("lower", "upper")}
    chosen = best[best["stage"] == "scratch"]["tune.params"].map(lambda t: json.loads(t)["train.lr"])
    assert _claim(claims, "edge.train.lr.scratch.upper")["value"] == (chosen == max(LRS)).sum()
    assert claims["id"].str.startswith(("mult.", "multfit.", "law.", "holdout.", "c.")).any()
    again = claims_for(folder, n_boot=200)
    pd.testing.assert_frame_equal(again, claims)  # the same runs and seed: the same claims


def _readings(claims: pd.DataFrame) -> str:
    err, gain = _claim(claims, "err.finetune.poisson.id.w32m8.n8"), _claim(claims, "gain.poisson.id.w32m8.n8")
    v = err["display"].split(" ")[0]
    g = gain["display"].split(" ")[0]
    return (
        "# Study\n\nThe sweep ran `harness report` at lr 1e-3 (outside the readings: not checked).\n\n"
        "<!-- readings -->\n"
        f"At N = 8 the largest fine-tuned model reaches {v}<!--claim:err.finetune.poisson.id.w32m8.n8--> "
        f"(scratch / fine-tuned {g}<!--claim:gain.poisson.id.w32m8.n8-->); the interval of the gain is "
        f"{gain['display'].split('(')[1].split('-')[0]}<!--claim:gain.poisson.id.w32m8.n8#lo--> to "
        f"{gain['display'].split('-')[1].rstrip('x)')}<!--claim:gain.poisson.id.w32m8.n8#hi-->. "
        f"Scratch runs were budget-limited in {_claim(claims, 'budget.scratch.n8')['display']}"
        "<!--claim:budget.scratch.n8--> runs at N = 8, see [the figure](error_vs_n.png).\n"
        "<!-- /readings -->\n"
    )


def test_a_faithful_reading_passes_and_breaking_one_number_fails(sweep) -> None:
    _, _, claims = sweep
    text = _readings(claims)
    assert check_readings(text, claims) == []
    value = _claim(claims, "err.finetune.poisson.id.w32m8.n8")
    quoted = value["display"].split(" ")[0]
    broken = text.replace(f"{quoted}<!--", f"{float(quoted) * 1.3:.{len(quoted.split('.')[1])}f}<!--", 1)
    problems = check_readings(broken, claims)
    assert len(problems) == 1 and "err.finetune.poisson.id.w32m8.n8" in problems[0] and "does not match" in problems[0]
    assert problems[0].startswith("line 6:")


def test_quoting_more_digits_than_the_interval_supports_fails(sweep) -> None:
    _, _, claims = sweep
    gain = _claim(claims, "gain.poisson.id.w32m8.n8")
    precise = f"{gain['value']:.6f}x<!--claim:gain.poisson.id.w32m8.n8-->"
    problems = check_readings(precise, claims)
    assert len(problems) == 1 and "finer than its interval supports" in problems[0]
    err = _claim(claims, "err.scratch.poisson.id.w32m8.n8")
    assert check_readings(f"{err['value']:.1g}<!--claim:err.scratch.poisson.id.w32m8.n8-->", claims) == []


def test_unmarked_numbers_unknown_ids_and_stray_markers_in_readings_fail(sweep) -> None:
    _, _, claims = sweep
    text = _readings(claims)
    unmarked = text.replace("<!-- /readings -->", "Pretraining transfers 12x better.\n<!-- /readings -->")
    problems = check_readings(unmarked, claims)
    assert problems == ["line 7: 12 in a reading quotes no claim (mark it <!--claim:ID-->)"]
    outside = text + "\nOutside the readings 12x is not checked unless marked.\n"
    assert check_readings(outside, claims) == []
    unknown = text.replace("claim:gain.poisson.id.w32m8.n8-->)", "claim:gain.poisson.id.w99m9.n8-->)")
    assert check_readings(unknown, claims) == ["line 6: unknown claim gain.poisson.id.w99m9.n8"]
    stray = "<!-- readings -->\nnothing quoted here <!--claim:step0.n8-->\n<!-- /readings -->"
    assert check_readings(stray, claims) == ["line 2: the marker of step0.n8 follows no number"]
    count = "<!-- readings -->\n5 of 12<!--claim:step0.n8--> fine-tunings\n<!-- /readings -->"
    assert check_readings(count, claims) == [
        "line 2: 12 for step0.n8 (0 of 6): does not match 0 at the precision it is written with",
        "line 2: 5 in a reading quotes no claim (mark it <!--claim:ID-->)"]  # fmt: skip
    words = "<!-- readings -->\nL2 on a 2D grid with w16m8 and `lr 3e-3`, N >= 128, N=32.\n<!-- /readings -->"
    assert check_readings(words, claims) == [] and np.isfinite(claims["value"]).all()


def test_the_compute_optimal_size_is_claimed_at_each_power_of_ten_of_compute(tmp_path):
    """claims.csv holds P* of every joint law at each power of ten its runs' compute spans, with its interval."""
    runs = joint_runs(seeds=(0, 1, 2), noise=0.05)
    claims = claims_for(write_synthetic_sweep(tmp_path / "joint", runs), n_boot=100).set_index("id")
    scratch = claims.loc[[f"popt.scratch.poisson.id.c1e{k}" for k in (10, 11, 12)]]
    assert (scratch["lo"] < scratch["value"]).all() and (scratch["value"] < scratch["hi"]).all()
    assert scratch["value"].is_monotonic_increasing and (scratch["runs"] == 60).all()
    assert "compute 1e+11 FLOPs" in scratch.loc["popt.scratch.poisson.id.c1e11", "ref"]
    for prefix in ("popt", "popt_amortised", "popt_full"):  # fine-tuning with its pretraining counted or not
        assert any(i.startswith(f"{prefix}.finetune.poisson.id") for i in claims.index)
