"""Fused jobs end to end (`pack:`, harness.job.run.run_group): a sweep's jobs of one shape trained as one program
by a real `harness submit` give each job the results it gets alone, also after the group's worker is killed
mid-training and the sweep resubmitted, and so do pretext pretrainings (run_group in this process); expand
refuses what cannot be fused in one line. Equal: each job's validation and test errors within a relative 1e-5
(float32 rounding of the batched kernels, see tests/train/test_fused.py)."""

import os
import signal

import pytest

from analysis.suggest_plan import TRAINED, measured_rates
from harness.job.fusable import fused_groups
from harness.job.run import run_group, run_job
from harness.store.folders import load_plan, run_dir
from harness.sweep.estimate import estimate
from harness.sweep.expand import expand
from harness.sweep.spec import load_sweep
from harness.train.checkpoint import load
from tests.helpers import (
    TINY,
    assert_refused_at_expand,
    cli,
    harness,
    results,
    start_harness,
    wait_for_line,
    workers,
    write_sweep,
)

# Four scratch jobs of one shape (16x16 Poisson, width 8): other seeds, N and learning rates; 12 steps each,
# evaluated every 3, a checkpoint after every step.
FOUR = {"name": "four", "base": {**TINY["base"], "model": {"width": 8, "modes": 4}, "init": "scratch",
                                 "train": {"steps": 12, "batch_size": 8, "eval_every": 3, "checkpoint_every_s": 0}},
        "zip": [{"seed": [0, 1, 2, 3], "downstream.n_train": [8, 16, 12, 16],
                 "train.lr": [1.0e-3, 3.0e-3, 1.0e-2, 3.0e-3]}]}
PACKED = {**FOUR, "pack": {"mode": "fused", "group": 4}}
METRICS = ["best_val_rel_l2", "test_rel_l2", "best_step", "steps_run", "status"]
pytestmark = pytest.mark.xdist_group("fused")


def submitted(tmp_path, spec, name):
    root = tmp_path / name / "results"
    cli(root, "expand", str(write_sweep(tmp_path / name, spec)))
    harness(root, "submit", "--workers", "1")
    return results(root, "four")


@pytest.fixture(scope="module")
def alone_and_fused(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fused")
    for name in ("alone", "packed"):
        (tmp / name).mkdir()
    return tmp, submitted(tmp, FOUR, "alone"), submitted(tmp, PACKED, "packed")


def assert_equal_tables(a, b):
    assert list(a["id"]) == list(b["id"]) and list(a["status"]) == ["ok"] * 4
    for column in ("best_step", "steps_run"):
        assert list(a[column]) == list(b[column])
    for column in ("best_val_rel_l2", "test_rel_l2"):
        assert list(b[column]) == pytest.approx(list(a[column]), rel=1e-5)


def test_a_packed_sweep_keeps_its_ids_and_equals_its_jobs_alone(alone_and_fused):
    _, alone, fused = alone_and_fused
    # the same ids: `pack` is how jobs run, not what they compute
    assert_equal_tables(alone[["id", *METRICS]], fused[["id", *METRICS]])


def test_a_fused_group_killed_mid_training_resumes_to_the_uninterrupted_results(alone_and_fused):
    tmp, _, fused = alone_and_fused
    root = tmp / "killed" / "results"
    (tmp / "killed").mkdir()
    cli(root, "expand", str(write_sweep(tmp / "killed", PACKED)))
    proc = start_harness(root, "submit", "--workers", "1", env={"HARNESS_HOLD_AT_STEP": "6"})
    wait_for_line(proc, "holding at step 6")  # the first job of the group, after its evaluation at step 6
    (pid,) = workers(proc.pid)
    os.kill(pid, signal.SIGKILL)
    out, _ = proc.communicate(timeout=120)
    assert "worker process died" in out, out
    steps = [load(run_dir(root / "four", job.id) / "ckpt" / "last.pt")["loop"]["step"]
             for job in load_plan(root / "four")]
    assert 6 in steps and max(steps) < 12, steps  # killed mid-training, the held job checkpointed at step 6
    harness(root, "submit", "--workers", "1")
    assert_equal_tables(fused[["id", *METRICS]], results(root, "four")[["id", *METRICS]])


def test_a_packed_sweeps_wall_times_add_up_to_its_time_and_price_each_run_at_its_share(alone_and_fused):
    # each job's wall_s is its share of the group's time: their sum is the time the group took (not 4 times it),
    # and harness suggest's seconds per FLOP (measured_rates) price the four jobs at no more than that time, not 4 times
    # it (both measured in the one run: the alone runs ran at another time, under another load)
    tmp, alone, fused = alone_and_fused
    assert list(fused["group_size"]) == [4] * 4 and "group_size" not in alone
    folders = [run_dir(tmp / "packed" / "results" / "four", i) for i in fused["id"]]
    took = max((f / "summary.parquet").stat().st_mtime for f in folders) - min(
        (f / "config.json").stat().st_mtime for f in folders)
    assert fused["wall_s"].sum() == pytest.approx(took, rel=0.25), (list(fused["wall_s"]), took)
    jobs = load_plan(tmp / "packed" / "results" / "four")
    (rate,) = measured_rates(jobs, fused).values()
    priced = rate * sum(estimate([job], 1.0)["total"].flops for job in jobs if job.stage in TRAINED)
    assert priced < 1.5 * took, (priced, took)  # each job priced at the group's time would give about 4 x took


def test_a_packed_sweep_that_tunes_is_refused_at_expand(tmp_path):
    spec = {**PACKED, "tune": {"params": {"train.lr": {"grid": [1.0e-3, 3.0e-3]}}, "sampler": "grid"}}
    assert_refused_at_expand(write_sweep(tmp_path, spec), r"pack.*tuned sweep's trials cannot be fused.*drop")


def test_a_bad_pack_group_is_refused_at_expand(tmp_path):
    assert_refused_at_expand(write_sweep(tmp_path, {**PACKED, "pack": {"group": 0}}),
                             r"pack\.group.*must be an integer >= 1, got 0")


def test_pack_is_off_unless_given_and_never_in_an_id(tmp_path):
    plain = expand(load_sweep(write_sweep(tmp_path, FOUR)))
    packed = expand(load_sweep(write_sweep(tmp_path, PACKED)))
    assert [j.id for j in plain] == [j.id for j in packed]
    assert all(j.pack is None and "pack" not in j.to_dict() for j in plain)
    assert all(j.pack is not None and j.to_dict()["pack"] == {"mode": "fused", "group": 4} for j in packed)


def assert_fused_equals_alone(tmp_path, spec, stage):
    """The ``stage`` jobs of ``spec`` (one group) run alone and fused in this process give equal results."""
    jobs = [j for j in expand(load_sweep(write_sweep(tmp_path, spec))) if str(j.stage) == stage]
    assert [len(g) for g in fused_groups(jobs)] == [3]
    alone = [run_job(job, tmp_path / "alone") for job in jobs]
    fused = run_group(jobs, tmp_path / "fused")
    assert [s["status"] for s in fused] == ["ok"] * 3 and any(s["best_step"] > 0 for s in alone)
    for column in ("best_val_rel_l2", "test_rel_l2"):
        assert [s[column] for s in fused] == pytest.approx([s[column] for s in alone], rel=1e-5)


@pytest.mark.parametrize("strategy", ["masked", "coefficient"])
def test_pretext_pretrainings_fused_equal_their_runs_alone(tmp_path, strategy):
    # a pretext strategy's own view (masks drawn from each job's generator) and head (a pooled head: coefficient)
    base = {**TINY["base"], "model": {"width": 8, "modes": 4},
            "pretrain": {**TINY["base"]["pretrain"], "strategy": strategy,
                         "train": {"steps": 6, "batch_size": 8, "lr": 3.0e-3, "eval_every": 2}}}
    spec = {"name": "pretext", "base": base, "matrix": {"pretrain.seed": [0, 1, 2]}, "pack": {"group": 4}}
    assert_fused_equals_alone(tmp_path, spec, "pretrain")


def test_next_step_jobs_with_pushforward_fused_equal_their_runs_alone(tmp_path):
    # the objective's training view runs each job's own model (one pushforward step) before the fused step
    base = {"task": "next_step", "unroll": 1, "resolution": 16, "nt": 8, "time_window": 2, "init": "scratch",
            "model": {"width": 8, "modes": 4}, "downstream": {"system": "heat", "n_train": 8, "n_val": 4, "n_test": 4},
            "train": {"steps": 6, "lr": 3.0e-3, "batch_size": 4, "eval_every": 2}}
    spec = {"name": "time", "base": base, "matrix": {"seed": [0, 1, 2]}, "pack": {"group": 4}}
    assert_fused_equals_alone(tmp_path, spec, "scratch")
