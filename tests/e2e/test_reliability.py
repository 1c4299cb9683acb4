"""Nothing wrong called ok, nothing run twice, nothing lost: results, exit statuses, the sweep lock, orphaned
workers, and the plan a sweep file gives (issue 16), through the real `harness` command and real processes."""

from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from analysis.load import load_runs
from harness.job import Job, JobConfig, Model
from harness.store import State
from harness.store.folders import load_plan, read_summary, run_dir, summary_row
from harness.store.lock import SUBMIT_LOCK
from tests.helpers import ROOT, TINY, cli, harness, results, start_harness, wait_for_line, workers, write_sweep

# One scratch job on 16x16 Poisson, width 4: a second or two per job.
SCRATCH = {**TINY, "name": "rel", "matrix": {"init": ["scratch"], "downstream.n_train": [8]}}
SCRATCH["base"] = {**TINY["base"], "model": {"width": 4, "modes": 4},
                   "train": {"epochs": 1, "lr": 1.0e-3, "batch_size": 8}}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_a_summary_is_ok_only_with_finite_errors() -> None:
    job = Job("sc-0123456789", "scratch", "s", JobConfig(16, 0, Model(), seed=0))
    row = summary_row(job, {"status": State.OK, "best_val_rel_l2": 0.5, "test_rel_l2": math.nan})
    assert row["status"] == "diverged" and "test_rel_l2 is nan" in row["error"]
    row = summary_row(job, {"status": State.OK, "best_val_rel_l2": math.inf, "test_rel_l2": 0.5})
    assert row["status"] == "diverged" and "best_val_rel_l2 is inf" in row["error"]
    assert summary_row(job, {"status": State.OK, "best_val_rel_l2": 0.5, "test_rel_l2": 0.4})["status"] == "ok"


def test_a_diverged_run_makes_submit_and_status_exit_1_and_retry_failed_reruns_it(tmp_path: Path) -> None:
    root = tmp_path / "results"
    spec = {**SCRATCH, "matrix": {"init": ["scratch"], "train.lr": [1.0e-3, 1.0e6]}}
    cli(root, "expand", str(write_sweep(tmp_path, spec)))
    out = harness(root, "submit", "--workers", "1", check=False)
    assert out.returncode == 1, out.stdout + out.stderr
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("not ok: 1 diverged (sc-"), last
    table = results(root, "rel").set_index("train.lr")
    assert table.loc[1.0e-3, "status"] == "ok" and table.loc[1.0e6, "status"] == "diverged"
    assert harness(root, "status", check=False).returncode == 1
    again = harness(root, "submit", "--retry-failed", check=False)
    assert "1 of 2 jobs to run" in again.stdout and again.returncode == 1
    report = harness(root, "report", "--n-boot", "10", check=False)
    assert report.returncode == 0, report.stdout + report.stderr  # one bad row never stops the report
    assert "1 diverged" in report.stdout


def test_one_submit_per_sweep_and_a_killed_submits_workers_stop(tmp_path: Path) -> None:
    root = tmp_path / "results"
    spec = {**SCRATCH, "base": {**SCRATCH["base"], "train": {"steps": 20000, "lr": 1.0e-3, "batch_size": 8,
                                                              "eval_every": 5, "checkpoint_every_s": 600}}}
    cli(root, "expand", str(write_sweep(tmp_path, spec)))
    first = start_harness(root, "submit", "--workers", "1", "--verbose")
    wait_for_line(first, "step      5")  # the worker is training
    pids = workers(first.pid)
    assert pids
    second = harness(root, "submit", "--workers", "1", check=False)
    assert second.returncode == 2
    assert f"pid {first.pid}, since" in second.stderr and "another `harness submit`" in second.stderr
    assert (root / "rel" / SUBMIT_LOCK).is_file()
    first.kill()  # SIGKILL: no chance to clean up; the kernel releases its lock, its worker notices
    first.communicate(timeout=60)
    deadline = time.time() + 30
    while any(_alive(p) for p in pids) and time.time() < deadline:
        time.sleep(0.2)
    assert not any(_alive(p) for p in pids), "an orphaned worker kept running"
    job = load_plan(root / "rel")[0]
    assert (run_dir(root / "rel", job.id) / "ckpt" / "last.pt").is_file()  # it checkpointed as it stopped
    third = harness(root, "submit", "--only", "pretrain")  # the lock is free again (nothing to run)
    assert "0 of 1 jobs to run" in third.stdout


def test_a_sweep_file_that_no_longer_gives_its_plan_is_refused_or_reexpanded_and_stale_runs_stay_out(
        tmp_path: Path) -> None:
    root = tmp_path / "results"
    path = write_sweep(tmp_path, SCRATCH)
    harness(root, "submit", str(path), "--workers", "1")  # expands a sweep file submitted without a plan
    first = load_plan(root / "rel")[0].id
    spec = yaml.safe_load(path.read_text())
    spec["matrix"]["downstream.n_train"] = [16]
    path.write_text(yaml.safe_dump(spec))
    refused = harness(root, "submit", str(path), check=False)
    assert refused.returncode == 2
    assert "no longer matches its plan" in refused.stderr and "1 new job(s) (sc-" in refused.stderr
    assert first in refused.stderr and "--reexpand" in refused.stderr
    harness(root, "submit", str(path), "--reexpand", "--workers", "1")
    table = results(root, "rel")
    assert table["id"].tolist() != [first] and len(table) == 1  # the old run is stale: not in the table
    assert read_summary(run_dir(root / "rel", first))["status"] == "ok"  # ... but kept on disk
    status = cli(root, "status")
    assert "stale: 1 runs not in the current plan" in status
    tables = _docs_recipe(root / "rel")  # the docs' tables, on a folder with checkpoints and a stale run
    assert tables["runs"]["id"].tolist() == table["id"].tolist() and len(tables["runs_on_disk"]) == 2
    assert set(tables["epochs"]["id"]) == {first, table["id"][0]} and tables["epochs"]["step"].min() == 0
    report = cli(root, "report", "--n-boot", "10")
    assert "1 ok" in report and "stale: 1 runs not in the current plan" in report
    for name in ("report.html", "report.md"):  # the report says so too, with the command that removes them
        text = (root / "rel" / "report" / name).read_text()
        assert "stale: 1 runs not in the current plan" in text and "`harness gc --stale` removes them" in text
    assert "removed 1 stale run(s)" in cli(root, "gc", "--stale")
    assert not run_dir(root / "rel", first).exists() and "stale" not in cli(root, "status")


def _docs_recipe(folder: Path) -> dict:
    """Run the pandas recipe of docs/results.md (its Python block reading results/smoke) on ``folder``; its
    variables."""
    text = (ROOT / "docs" / "results.md").read_text()
    block = next(b.split("```")[0] for b in text.split("```python\n")[1:] if 'Path("results/smoke")' in b)
    scope: dict = {}
    exec(block.replace('Path("results/smoke")', f"Path({str(folder)!r})"), scope)
    return scope


@pytest.mark.parametrize("bad", ["../../outside", "/tmp/abs"])
def test_a_plan_with_a_job_id_that_is_a_path_is_refused(tmp_path: Path, bad: str) -> None:
    root = tmp_path / "results"
    cli(root, "expand", str(write_sweep(tmp_path, SCRATCH)))
    plan = root / "rel" / "plan.json"
    plan.write_text(plan.read_text().replace(load_plan(root / "rel")[0].id, bad))
    out = harness(root, "submit", check=False)
    assert out.returncode == 2 and "not a plain name" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "outside").exists()


def test_unreadable_plan_is_one_line(tmp_path: Path) -> None:
    root = tmp_path / "results"
    cli(root, "expand", str(write_sweep(tmp_path, SCRATCH)))
    (root / "rel" / "plan.json").write_bytes(b"\xff\xfe{not json")
    out = harness(root, "status", check=False)
    assert out.returncode == 2 and "plan.json: unreadable plan" in out.stderr and "Traceback" not in out.stderr


def test_sigterm_to_a_submit_stops_its_workers_too(tmp_path: Path) -> None:
    root = tmp_path / "results"
    spec = {**SCRATCH, "base": {**SCRATCH["base"], "train": {"steps": 20000, "lr": 1.0e-3, "batch_size": 8,
                                                              "eval_every": 5}}}
    cli(root, "expand", str(write_sweep(tmp_path, spec)))
    proc = start_harness(root, "submit", "--workers", "1", "--verbose")
    wait_for_line(proc, "step      5")
    pids = workers(proc.pid)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    deadline = time.time() + 30
    while any(_alive(p) for p in pids) and time.time() < deadline:
        time.sleep(0.2)
    assert pids and not any(_alive(p) for p in pids)


# A pretraining and its fine-tuning on 16x16 Poisson, width 4: a few seconds each.
CHAIN = {**SCRATCH, "name": "chain", "matrix": {"init": ["pretrained"], "downstream.n_train": [8]}}
CHAIN["base"] = {**SCRATCH["base"], "pretrain": {**TINY["base"]["pretrain"], "n_train": 16,
                                                 "train": {"epochs": 2, "lr": 3.0e-3, "batch_size": 8}}}
METRICS = ["id", "status", "test_rel_l2", "best_val_rel_l2", "best_step", "steps_run"]


def test_a_done_job_whose_files_do_not_match_its_manifest_reruns_to_the_same_results(tmp_path: Path) -> None:
    root = tmp_path / "results"
    cli(root, "expand", str(write_sweep(tmp_path, CHAIN)))
    harness(root, "submit", "--workers", "1")
    clean = results(root, "chain")[METRICS]
    pt, ft = (run_dir(root / "chain", job.id) for job in load_plan(root / "chain"))
    epochs = (ft / "epochs.parquet").read_bytes()
    manifest = json.loads((pt / "manifest.json").read_text())["files"]
    assert set(manifest) == {"epochs.parquet", "ckpt/best.pt", "stats.json"}
    assert manifest["ckpt/best.pt"]["sha256"] == hashlib.sha256((pt / "ckpt/best.pt").read_bytes()).hexdigest()
    best = pt / "ckpt" / "best.pt"
    size = best.stat().st_size
    os.truncate(best, size // 2)  # a torn copy
    loaded = load_runs(root / "chain")  # the report leaves it out too, and says why
    assert loaded.missing == [pt.name] and loaded.ok["id"].tolist() == [ft.name]
    assert any(job == pt.name and "incomplete: ckpt/best.pt has" in why for job, why in loaded.problems)
    loaded = load_runs(root / "chain")  # the report leaves it out too, and says why
    assert loaded.missing == [pt.name] and loaded.ok["id"].tolist() == [ft.name]
    assert any(job == pt.name and "incomplete: ckpt/best.pt has" in why for job, why in loaded.problems)
    status = cli(root, "status")
    assert f"{pt.name} incomplete: ckpt/best.pt has {size // 2} bytes, manifest.json says {size}" in status
    again = harness(root, "submit", "--workers", "1")
    assert "1 of 2 jobs to run (pretrain 1)" in again.stdout and "incomplete" in again.stdout
    assert best.stat().st_size == size
    with open(ft / "epochs.parquet", "r+b") as fh:  # flip bytes in the middle, same size
        fh.seek(len(epochs) // 2)
        fh.write(bytes(b ^ 0xFF for b in epochs[len(epochs) // 2:len(epochs) // 2 + 8]))
    assert "epochs.parquet was altered" in cli(root, "status")
    again = harness(root, "submit", "--workers", "1")
    assert "1 of 2 jobs to run (finetune 1)" in again.stdout  # it resumes from its last checkpoint
    assert (ft / "epochs.parquet").read_bytes() == epochs
    pd.testing.assert_frame_equal(results(root, "chain")[METRICS], clean)
    assert "incomplete" not in cli(root, "status")


def test_a_job_written_before_manifests_counts_by_the_presence_of_its_files(tmp_path: Path) -> None:
    root = tmp_path / "results"
    cli(root, "expand", str(write_sweep(tmp_path, SCRATCH)))
    harness(root, "submit", "--workers", "1")
    folder = run_dir(root / "rel", load_plan(root / "rel")[0].id)
    (folder / "manifest.json").unlink()  # as an earlier version left it
    assert "0 of 1 jobs to run" in cli(root, "submit", "--dry-run")
    assert "1 ok" in cli(root, "report", "--n-boot", "10")
    (folder / "epochs.parquet").write_bytes(b"")
    assert f"{folder.name} incomplete: epochs.parquet is empty" in cli(root, "status")
    assert "1 of 1 jobs to run" in harness(root, "submit", "--workers", "1").stdout
    assert (folder / "manifest.json").is_file()
