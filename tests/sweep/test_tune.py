"""Tuning inside a sweep: optuna studies per sweep point, trials as jobs, best trial on validation, resume."""

from __future__ import annotations

import json
import os
import re
import signal
from collections import Counter
from pathlib import Path

import optuna
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from harness.cli import main
from harness.job.hooks import HOLD_ENV
from harness.job.trial import storage_url
from harness.store.folders import load_plan
from harness.sweep.expand import expand
from harness.sweep.spec import load_sweep
from tests.helpers import TINY, cli, harness, start_harness, wait_for_line, workers

PAPER_LRS = [1.0e-5, 5.0e-5, 1.0e-4, 5.0e-4, 1.0e-3]


def tuned(tune: dict, **matrix: list) -> dict:
    spec = yaml.safe_load(yaml.safe_dump(TINY))
    spec.update(name="tuned", tune=tune, matrix={"init": ["scratch"], **matrix})
    return spec


def _write(tmp_path: Path, spec: dict) -> Path:
    path = tmp_path / "tuned.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def _studies(sweep_path: Path) -> dict[str, list[optuna.trial.FrozenTrial]]:
    storage = storage_url(sweep_path)
    return {s.study_name: optuna.load_study(study_name=s.study_name, storage=storage).get_trials()
            for s in optuna.get_all_study_summaries(storage)}


def test_a_grid_over_the_papers_five_learning_rates_gives_five_trials_per_point(tmp_path: Path) -> None:
    spec = tuned({"params": {"train.lr": {"grid": PAPER_LRS}}, "sampler": "grid"},
                 **{"downstream.n_train": [8, 16, 32]})
    jobs = expand(load_sweep(_write(tmp_path, spec)))
    assert len(jobs) == 3 * 5
    by_study: dict[str, list[int]] = {}
    for job in jobs:
        by_study.setdefault(job.config.tune.study, []).append(job.config.tune.trial)
    assert len(by_study) == 3 and all(sorted(t) == list(range(5)) for t in by_study.values())


def test_each_stage_may_search_its_own_grid(tmp_path: Path) -> None:
    grids = {"finetune": [1.0e-3, 3.0e-3], "scratch": [3.0e-3, 1.0e-2, 3.0e-2]}
    spec = tuned({"params": {stage: {"train.lr": {"grid": g}} for stage, g in grids.items()}, "sampler": "grid"},
                 init=["pretrained", "scratch"])
    path = _write(tmp_path, spec)
    jobs = expand(load_sweep(path))
    trials = Counter(job.stage for job in jobs if job.config.tune is not None)
    assert trials == {"finetune": 2, "scratch": 3}
    for job in jobs:
        if job.config.tune is not None:
            space = json.loads(job.config.tune.spec)["params"]["train.lr"]["values"]
            assert space == grids[job.stage]
    out = cli(tmp_path / "r", "expand", str(path))
    assert "tune: 2 trials per finetune point" in out and "tune: 3 trials per scratch point" in out
    # a sweep with one grid for both stages keeps its trial specs (and so its job ids)
    one = expand(load_sweep(_write(tmp_path, tuned({"params": {"train.lr": {"grid": grids["finetune"]}},
                                                     "sampler": "grid"}, init=["pretrained", "scratch"]))))
    assert {j.config.tune.spec for j in one if j.config.tune is not None} == {
        json.dumps({"metric": "val_rel_l2", "n_trials": 2, "params": {"train.lr": {"kind": "grid",
                    "values": grids["finetune"]}}, "pruner": "none", "sampler": "grid", "seed": 0,
                    "stages": ["finetune", "scratch"]}, sort_keys=True)}


@pytest.mark.slow
def test_a_tuned_sweep_picks_its_best_trial_on_validation_and_resubmits_nothing(tmp_path: Path) -> None:
    root = tmp_path / "results"
    spec = tuned({"params": {"train.lr": {"grid": PAPER_LRS}}, "sampler": "grid"}, **{"downstream.n_train": [8, 16]})
    out = cli(root, "expand", str(_write(tmp_path, spec)))
    assert "tune: 5 trials per finetune/scratch point (grid sampler" in out
    harness(root, "submit", "--workers", "2")
    studies = _studies(root / "tuned")
    assert len(studies) == 2
    for trials in studies.values():
        assert sorted(t.params["train.lr"] for t in trials) == PAPER_LRS
        assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    table = pd.read_parquet(root / "tuned" / "results.parquet")
    assert len(table) == 10 and (table["status"] == "ok").all()
    for study, rows in table.groupby("tune.study"):
        best = rows[rows["tune.best"]]
        assert len(best) == 1
        assert best["best_val_rel_l2"].iloc[0] == rows["best_val_rel_l2"].min()  # chosen on validation
        won = min(studies[study], key=lambda t: t.value)
        assert best["train.lr"].iloc[0] == won.params["train.lr"]
        assert best["tune.params"].iloc[0] == f'{{"train.lr": {won.params["train.lr"]}}}'
    assert "0 of 10 jobs to run" in harness(root, "submit").stdout
    assert sum(len(t) for t in _studies(root / "tuned").values()) == 10
    status = cli(root, "tune-status")
    assert status.count("5 trials (complete 5)") == 2 and "journal.log" in status


@pytest.mark.slow
def test_killing_a_tuned_sweep_midway_then_resubmitting_finishes_without_duplicate_trials(tmp_path: Path) -> None:
    root = tmp_path / "results"
    spec = tuned({"params": {"train.lr": {"log_uniform": [1.0e-4, 1.0e-2]}}, "n_trials": 3, "sampler": "tpe",
                  "seed": 3})
    spec["base"]["downstream"]["n_train"] = 32
    spec["base"]["train"].update(epochs=4, checkpoint_every_s=0)  # 16 steps, a last.pt at every step
    cli(root, "expand", str(_write(tmp_path, spec)))
    jobs = load_plan(root / "tuned")
    proc = start_harness(root, "submit", "--workers", "1", env={HOLD_ENV: f"{jobs[1].id}:2"})
    wait_for_line(proc, "holding at step 2")  # the first trial done, the second one midway
    for pid in workers(proc.pid):
        os.kill(pid, signal.SIGKILL)
    proc.communicate(timeout=600)  # the third trial runs on a fresh worker
    (trials,) = _studies(root / "tuned").values()
    assert [t.state for t in trials].count(optuna.trial.TrialState.RUNNING) == 1
    harness(root, "submit", "--workers", "1")
    (trials,) = _studies(root / "tuned").values()
    assert len(trials) == 3 and all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert len({t.user_attrs["job"] for t in trials}) == 3
    table = pd.read_parquet(root / "tuned" / "results.parquet")
    assert (table["status"] == "ok").all() and table["tune.best"].sum() == 1


BAD = [
    ("unknown-parameter", {"params": {"train.lrr": {"log_uniform": [1e-5, 1e-2]}}}, r"unknown key `train\.lrr`"),
    ("not-tunable", {"params": {"model.width": {"choice": [8, 16]}}}, r"`model\.width` cannot be tuned"),
    ("empty-range", {"params": {"train.lr": {"grid": []}}, "sampler": "grid"}, r"grid needs a non-empty list"),
    ("lo-gt-hi", {"params": {"train.lr": {"log_uniform": [1e-2, 1e-5]}}},
     r"`low < high` must hold, but got \(low=0\.01, high=1e-05\)"),
    ("test-metric", {"params": {"train.lr": {"uniform": [1e-4, 1e-3]}}, "metric": "test_rel_l2"},
     r"cannot tune on 'test_rel_l2': the test error is never used for tuning"),
    ("unlogged-metric", {"params": {"train.lr": {"uniform": [1e-4, 1e-3]}}, "metric": "val_loss"},
     r"cannot tune on 'val_loss': it is not logged; choose one of val_rel_l2"),
    ("stage-space-bad", {"params": {"scratch": {"train.lrr": {"grid": [1e-3]}}}, "sampler": "grid"},
     r"tune\.params\.scratch\.train\.lrr.*unknown key `train\.lrr`"),
    ("stage-space-stages", {"params": {"scratch": {"train.lr": {"grid": [1e-3]}}}, "stages": ["finetune"]},
     r"tune\.stages.*the stages tuned are those `params` names; omit `stages`"),
    ("grid-needs-grid", {"params": {"train.lr": {"uniform": [1e-4, 1e-3]}}, "sampler": "grid"},
     r"the grid sampler needs every parameter as \{grid: \[\.\.\.\]\}"),
]


@pytest.mark.parametrize(("tune", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_tune_blocks_fail_at_expand_with_a_clear_line(tmp_path: Path, tune: dict, message: str) -> None:
    root = tmp_path / "results"
    result = CliRunner().invoke(main, ["expand", str(_write(tmp_path, tuned(tune))), "--root", str(root)])
    assert result.exit_code == 2
    line = result.output.strip()
    assert "\n" not in line and re.search(message, line), line
    assert not root.exists()
