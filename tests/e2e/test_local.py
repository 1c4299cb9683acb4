"""The local backend end to end: real PDE data, real FNO trainings, real worker processes, real Parquet."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from harness.backends.local import plan_slots
from harness.cli import main
from harness.job.hooks import HOLD_ENV
from harness.store.folders import load_plan, read_summary, run_dir
from tests.helpers import TINY, cli, harness, results, start_harness, wait_for_line, workers, write_sweep

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The tiny sweep expanded and run once on two local workers: (results root, the submit's output)."""
    folder = tmp_path_factory.mktemp("tiny")
    root = folder / "results"
    cli(root, "expand", str(write_sweep(folder, TINY)))
    return root, harness(root, "submit", "--workers", "2").stdout


def test_a_sweep_runs_end_to_end_and_resubmitting_runs_nothing(tiny: tuple[Path, str]) -> None:
    root, out = tiny
    assert "6 ok" in out
    table = results(root)
    assert sorted(table["stage"]) == ["finetune", "finetune", "pretrain", "scratch", "scratch", "zeroshot"]
    assert (table["status"] == "ok").all() and table["test_rel_l2"].between(0, 10).all()
    finetune = table[table["stage"] == "finetune"]
    assert (finetune["transferred"] != "").all() and (finetune["depends_on"] != "").all()
    assert (table["n_params"] > 0).all() and table["git_rev"].notna().all()
    epochs = pd.read_parquet(run_dir(root / "tiny", table["id"][0]) / "epochs.parquet")
    assert {"step", "epoch", "train_loss", "val_rel_l2", "lr", "seconds"} <= set(epochs.columns)
    again = harness(root, "submit")
    assert "0 of 6 jobs to run" in again.stdout
    status = cli(root, "status")
    assert "ok" in status and "finetune" in status


def test_a_workers_threads_are_its_share_of_the_cores_unless_the_user_set_omp_num_threads(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert [s.threads for s in plan_slots(workers=2, cores=8)] == [4, 4]
    assert [s.threads for s in plan_slots(cores=8)] == [2, 2, 2, 2]  # one worker per 2 cores
    assert [(s.gpu, s.threads) for s in plan_slots(jobs_per_gpu=2, gpus=["0", "1"], cores=8)] == [
        ("0", 2), ("0", 2), ("1", 2), ("1", 2)]
    for value, threads in (("3", 3), ("2,1", 2), ("0", 4), ("many", 4)):  # nested levels: the first; junk: ignored
        monkeypatch.setenv("OMP_NUM_THREADS", value)
        assert [s.threads for s in plan_slots(workers=2, cores=8)] == [threads, threads], value


def test_the_inline_backend_runs_the_jobs_here_with_the_local_results(tiny: tuple[Path, str],
                                                                      tmp_path: Path) -> None:
    root = tmp_path / "results"
    cli(root, "expand", str(write_sweep(tmp_path, TINY)))
    # in this very process (a debugger would stop in run_job), with the threads of one of two local workers
    result = CliRunner().invoke(main, ["submit", "--backend", "inline", "--workers", "2", "--root", str(root)])
    assert result.exit_code == 0 and "6 ok" in result.output, result.output
    local, inline = results(tiny[0]), results(root)
    assert local["id"].tolist() == inline["id"].tolist()
    for column in ("test_rel_l2", "best_val_rel_l2", "n_params", "epochs_run"):
        np.testing.assert_allclose(inline[column], local[column], rtol=1e-6)


def test_same_seeds_give_identical_results_and_other_seeds_differ(tmp_path: Path) -> None:
    spec = {**TINY, "matrix": {"downstream.n_train": [8], "init": ["scratch"], "seed": [0, 1]}}
    tables = []
    for run in ("a", "b"):
        root = tmp_path / run
        cli(root, "expand", str(write_sweep(tmp_path, spec)))
        harness(root, "submit", "--workers", "1")
        tables.append(results(root))
    assert tables[0]["test_rel_l2"].tolist() == tables[1]["test_rel_l2"].tolist()
    assert tables[0]["test_rel_l2"][0] != tables[0]["test_rel_l2"][1]


def test_diverged_blocked_and_incomplete_jobs_are_recorded_and_do_not_stop_the_sweep(tmp_path: Path) -> None:
    root = tmp_path / "results"
    spec = {**TINY, "name": "faults", "matrix": {"init": ["pretrained", "scratch", "zeroshot"],
                                                 "pretrain.train.lr": [3.0e-3, 1.0e6]}}
    cli(root, "expand", str(write_sweep(tmp_path, spec, downstream={"n_train": 16})))
    assert harness(root, "submit", "--only", "pretrain", check=False).returncode == 1  # one diverged
    jobs = load_plan(root / "faults")
    pretrain = [j for j in jobs if j.stage == "pretrain"]
    states = {j.config.pretrain.train.lr: read_summary(run_dir(root / "faults", j.id))["status"]
              for j in pretrain}
    assert states == {3.0e-3: "ok", 1.0e6: "diverged"}
    good = next(j for j in pretrain if j.config.pretrain.train.lr == 3.0e-3)
    best = run_dir(root / "faults", good.id) / "ckpt" / "best.pt"
    best.unlink()  # an ok pretraining without its best weights is incomplete: it reruns (from its last.pt)
    assert harness(root, "submit", check=False).returncode == 1  # the diverged one's dependants are blocked
    assert best.is_file()
    table = results(root, "faults").set_index("id")
    by_dep = {j.id: j.depends_on for j in jobs}
    for jid, row in table.iterrows():
        if row["stage"] == "scratch" or jid == good.id or by_dep[jid] == good.id:
            assert row["status"] == "ok", (jid, row["error"])
        elif row["stage"] != "pretrain":
            assert row["status"] == "blocked" and row["error"], (jid, row["error"])
    status = harness(root, "status", check=False)
    assert status.returncode == 1
    assert "blocked" in status.stdout and "diverged" in status.stdout and "lower the learning rate" in status.stdout


def test_a_sigkilled_worker_resumes_and_the_results_equal_an_uninterrupted_run(tmp_path: Path) -> None:
    spec = {**TINY, "name": "kill", "matrix": {"init": ["pretrained", "scratch"]}}
    spec["base"] = {**TINY["base"], "pretrain": {**TINY["base"]["pretrain"],
                                                 "train": {"epochs": 6, "lr": 3.0e-3, "batch_size": 16,
                                                           "eval_every": 3, "checkpoint_every_s": 0}}}
    sweep = write_sweep(tmp_path, spec, downstream={"n_train": 16})
    clean = tmp_path / "clean"
    cli(clean, "expand", str(sweep))
    harness(clean, "submit", "--workers", "1")

    root = tmp_path / "killed"
    cli(root, "expand", str(sweep))
    pretrain = next(j for j in load_plan(root / "kill") if j.stage == "pretrain")
    proc = start_harness(root, "submit", "--workers", "1", env={HOLD_ENV: f"{pretrain.id}:9"})
    wait_for_line(proc, "holding at step 9")  # the pretraining waits after its third epoch's checkpoint
    found = workers(proc.pid)
    assert found, "no worker process found"
    for pid in found:
        os.kill(pid, signal.SIGKILL)
    out, _ = proc.communicate(timeout=600)
    assert "worker process died" in out
    killed = read_summary(run_dir(root / "kill", pretrain.id))
    assert killed["status"] == "failed"
    assert not list((root / "kill").rglob("*.tmp"))  # no half-written files
    harness(root, "submit", "--workers", "1")
    epochs = pd.read_parquet(run_dir(root / "kill", pretrain.id) / "epochs.parquet")
    assert epochs["step"].tolist() == list(range(0, 19, 3))  # one row per epoch of 3 steps, none twice
    a, b = results(clean, "kill"), results(root, "kill")
    assert (b["status"] == "ok").all()
    assert a["id"].tolist() == b["id"].tolist()
    assert a["test_rel_l2"].tolist() == b["test_rel_l2"].tolist()
