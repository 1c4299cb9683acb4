"""Claims pairing two sweeps by seed: the ratio of another protocol's errors to the base's, and the base's search
widened by values beyond its grid, replayed on recorded validation errors."""

import json

import numpy as np
import pytest

from analysis.paired import outside_the_grid, ratio_claims, widened_claims
from analysis.synthetic import synthetic_runs, tuned_runs

SEEDS = (0, 1, 2, 3, 4)


@pytest.fixture(scope="module")
def base():
    runs = tuned_runs(synthetic_runs(shifts=("id",), sizes=((16, 4),), seeds=SEEDS), lrs=(1e-3, 3e-3))
    return runs


def _by_id(rows: list[dict]) -> dict:
    return {r["id"]: r for r in rows}


def test_a_protocol_that_lowers_every_error_by_a_fifth_reads_as_0_8x_with_an_interval_around_it(base) -> None:
    ok = base[base["tune.best"]]
    rng = np.random.default_rng(1)
    longer = ok.assign(test_rel_l2=ok["test_rel_l2"] * 0.8 * np.exp(rng.normal(0, 0.05, len(ok))))
    claims = _by_id(ratio_claims(ok, longer, "budget"))
    assert len(claims) == 2 * 5  # finetune and scratch at five N
    for cid, c in claims.items():
        assert cid.startswith("pair.budget.ratio.") and c["ci"] == "95 % (t over seeds, 4 df)"
        assert c["lo"] <= 0.8 <= c["hi"] and abs(c["value"] - 0.8) < 0.08 and c["runs"] == len(SEEDS)


def test_a_rate_beyond_the_grid_is_chosen_where_its_validation_is_lower_and_changes_those_points_only(base) -> None:
    ok = base[base["tune.best"]]
    wins = (ok["seed"] == 0).to_numpy()  # the new rate validates better on seed 0 only, with 0.7x the test error
    edge = ok.assign(**{"train.lr": 1e-2, "tune.params": json.dumps({"train.lr": 1e-2}),
                        "best_val_rel_l2": ok["best_val_rel_l2"] * np.where(wins, 0.5, 2.0),
                        "test_rel_l2": ok["test_rel_l2"] * 0.7})  # fmt: skip
    assert outside_the_grid(base, edge) and not outside_the_grid(base, ok)
    claims = _by_id(widened_claims(base, edge, "lr-edge"))
    chosen = claims["pair.lr-edge.chosen.scratch.poisson.id.w16m4"]
    assert chosen["display"] == "5 of 25"  # seed 0 at each of five N
    widened = claims["pair.lr-edge.widened.scratch.poisson.id.w16m4.n8"]
    assert widened["value"] == pytest.approx(0.7 ** (1 / 5))  # the geometric mean over five seed-paired ratios


def test_a_search_keeps_its_choice_when_the_new_rate_validates_worse(base) -> None:
    ok = base[base["tune.best"]]
    edge = ok.assign(**{"train.lr": 1e-2, "tune.params": json.dumps({"train.lr": 1e-2}),
                        "best_val_rel_l2": ok["best_val_rel_l2"] * 1.5, "test_rel_l2": ok["test_rel_l2"] * 0.1})
    claims = widened_claims(base, edge, "lr-edge")
    assert {c["display"] for c in claims if ".chosen." in c["id"]} == {"0 of 25"}
    assert all(c["value"] == 1.0 for c in claims if ".widened." in c["id"])
