"""The local backend end to end: real PDE data, real FNO trainings, real worker processes, real Parquet."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from harness.store import load_plan, read_summary, run_dir

pytestmark = pytest.mark.slow

TINY = {
    "name": "tiny",
    "base": {
        "resolution": 16,
        "model": {"width": 6, "modes": 4},
        "pretrain": {"n_train": 48, "n_val": 16, "n_test": 16, "train": {"epochs": 4, "lr": 3.0e-3, "batch_size": 16}},
        "downstream": {"n_val": 16, "n_test": 16},
        "train": {"epochs": 3, "lr": 1.0e-3, "batch_size": 8},
    },
    "matrix": {"downstream.n_train": [8, 16], "init": ["pretrained", "scratch", "zeroshot"]},
}


def harness(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run the real `harness` command in a subprocess (real worker processes)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([sys.executable, "-m", "harness.cli", *args, "--root", str(root)], capture_output=True,
                          text=True, env=env, timeout=900)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def write_sweep(tmp_path: Path, sweep: dict, **base: dict) -> Path:
    spec = yaml.safe_load(yaml.safe_dump(sweep))
    for key, value in base.items():
        spec["base"][key] = {**spec["base"].get(key, {}), **value}
    path = tmp_path / f"{spec['name']}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def results(root: Path, name: str = "tiny") -> pd.DataFrame:
    table = pd.read_parquet(root / name / "results.parquet")  # every job's summary row, one table
    return table.sort_values("id").reset_index(drop=True)


def test_a_sweep_runs_end_to_end_and_resubmitting_runs_nothing(tmp_path: Path) -> None:
    root = tmp_path / "results"
    harness(root, "expand", str(write_sweep(tmp_path, TINY)))
    out = harness(root, "submit", "--workers", "2")
    assert "6 ok" in out.stdout
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
    status = harness(root, "status").stdout
    assert "ok" in status and "finetune" in status


def test_same_seeds_give_identical_results_and_other_seeds_differ(tmp_path: Path) -> None:
    spec = {**TINY, "matrix": {"downstream.n_train": [8], "init": ["scratch"], "seed": [0, 1]}}
    tables = []
    for run in ("a", "b"):
        root = tmp_path / run
        harness(root, "expand", str(write_sweep(tmp_path, spec)))
        harness(root, "submit", "--workers", "1")
        tables.append(results(root))
    assert tables[0]["test_rel_l2"].tolist() == tables[1]["test_rel_l2"].tolist()
    assert tables[0]["test_rel_l2"][0] != tables[0]["test_rel_l2"][1]


def test_failed_diverged_and_blocked_jobs_are_recorded_and_do_not_stop_the_sweep(tmp_path: Path) -> None:
    root = tmp_path / "results"
    spec = {**TINY, "name": "faults", "matrix": {"init": ["pretrained", "scratch", "zeroshot"],
                                                 "pretrain.train.lr": [3.0e-3, 1.0e6]}}
    harness(root, "expand", str(write_sweep(tmp_path, spec)))
    harness(root, "submit", "--only", "pretrain")
    jobs = load_plan(root / "faults")
    pretrain = [j for j in jobs if j["stage"] == "pretrain"]
    states = {j["config"]["pretrain"]["train"]["lr"]: read_summary(run_dir(root / "faults", j["id"]))["status"]
              for j in pretrain}
    assert states == {3.0e-3: "ok", 1.0e6: "diverged"}
    good = next(j for j in pretrain if j["config"]["pretrain"]["train"]["lr"] == 3.0e-3)
    (run_dir(root / "faults", good["id"]) / "ckpt" / "best.pt").unlink()  # its dependants cannot load it
    harness(root, "submit")
    table = results(root, "faults").set_index("id")
    by_dep = {j["id"]: j["depends_on"] for j in jobs}
    for jid, row in table.iterrows():
        if row["stage"] == "scratch":
            assert row["status"] == "ok"
        elif row["stage"] != "pretrain":
            expected = "failed" if by_dep[jid] == good["id"] else "blocked"
            assert row["status"] == expected, (jid, row["error"])
            assert row["error"]
    failed = table[table["status"] == "failed"].index[0]
    assert "best.pt" in (run_dir(root / "faults", failed) / "error.txt").read_text().splitlines()[-1]
    status = harness(root, "status").stdout
    assert "blocked" in status and "diverged" in status and "no checkpoint at" in status


def _workers(pid: int) -> list[int]:
    """The worker processes of a `harness submit` (its spawned children, not multiprocessing's helpers)."""
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split() if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text()]


def test_a_sigkilled_worker_resumes_and_the_results_equal_an_uninterrupted_run(tmp_path: Path) -> None:
    spec = {**TINY, "name": "kill", "matrix": {"init": ["pretrained", "scratch"]}}
    spec["base"] = {**TINY["base"], "pretrain": {**TINY["base"]["pretrain"],
                                                 "train": {"epochs": 100, "lr": 3.0e-3, "batch_size": 16,
                                                           "eval_every": 3, "checkpoint_every_s": 0.2}}}
    sweep = write_sweep(tmp_path, spec)
    clean = tmp_path / "clean"
    harness(clean, "expand", str(sweep))
    harness(clean, "submit", "--workers", "1")

    root = tmp_path / "killed"
    harness(root, "expand", str(sweep))
    pretrain = next(j for j in load_plan(root / "kill") if j["stage"] == "pretrain")
    last = run_dir(root / "kill", pretrain["id"]) / "ckpt" / "last.pt"
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "submit", "--workers", "1", "--root", str(root)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while not last.exists() and time.time() < deadline:
        time.sleep(0.05)
    workers = _workers(proc.pid)
    assert workers, "no worker process found"
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    out, _ = proc.communicate(timeout=600)
    assert "worker process died" in out
    killed = read_summary(run_dir(root / "kill", pretrain["id"]))
    assert killed["status"] == "failed"
    assert not list((root / "kill").rglob("*.tmp"))  # no half-written files
    harness(root, "submit", "--workers", "1")
    epochs = pd.read_parquet(run_dir(root / "kill", pretrain["id"]) / "epochs.parquet")
    assert epochs["step"].tolist() == list(range(0, 301, 3))  # one row per epoch of 3 steps, none twice
    a, b = results(clean, "kill"), results(root, "kill")
    assert (b["status"] == "ok").all()
    assert a["id"].tolist() == b["id"].tolist()
    assert a["test_rel_l2"].tolist() == b["test_rel_l2"].tolist()
