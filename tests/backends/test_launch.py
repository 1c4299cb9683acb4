"""Jobs of several ranks (`resources`): checked at expand, launched by the local backend under torchrun, a killed
rank failing the job cleanly and the next submit resuming it to the uninterrupted result."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.errors import SweepError
from harness.job.hooks import HOLD_ENV
from harness.store.folders import load_plan, read_summary, run_dir
from harness.sweep.expand import expand
from harness.sweep.spec import load_sweep
from tests.helpers import cli, harness, results, start_harness, write_sweep

# One scratch job of two ranks: 16x16, width 4, 12 steps of global batch 5 over 11 samples, a checkpoint each step.
DDP = {
    "name": "ddp",
    "base": {
        "init": "scratch",
        "resolution": 16,
        "model": {"width": 4, "modes": 4},
        "downstream": {"n_train": 11, "n_val": 6, "n_test": 7},
        "train": {"steps": 12, "eval_every": 3, "lr": 1.0e-2, "batch_size": 5, "checkpoint_every_s": 0.0},
        "resources": {"gpus": 2},
    },
}


def _rank_pid(launch_file: Path, local_rank: int) -> int | None:
    """The pid of the rank process ``local_rank`` of the job launched from ``launch_file``, if it runs."""
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if str(launch_file).encode() in cmdline and b"harness.backends.rank" in cmdline \
                and f"LOCAL_RANK={local_rank}".encode() in environ:
            return int(entry.name)
    return None


def _wait_for(predicate, seconds: float = 300.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if found := predicate():
            return found
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_more_ranks_than_the_machine_offers_are_refused_at_expand(tmp_path: Path) -> None:
    cores = os.cpu_count() or 1
    sweep = write_sweep(tmp_path, {**DDP, "matrix": {"resources.gpus": [1, cores + 1]}})
    with pytest.raises(SweepError, match=rf"resources\.gpus.*{cores + 1} but {cores} per node are available"):
        expand(load_sweep(sweep))
    nodes = write_sweep(tmp_path, {**DDP, "base": {**DDP["base"], "resources": {"nodes": 2}}})
    with pytest.raises(SweepError, match=r"resources\.nodes = 2 but the local backend has one node"):
        expand(load_sweep(nodes))


def test_tuned_stages_refuse_several_ranks(tmp_path: Path) -> None:
    tune = {"params": {"train.lr": {"grid": [1.0e-3, 1.0e-2]}}, "sampler": "grid"}
    with pytest.raises(SweepError, match=r"scratch jobs are tuned .* remove resources"):
        expand(load_sweep(write_sweep(tmp_path, {**DDP, "tune": tune})))


def test_resources_stay_out_of_the_job_id(tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    one = write_sweep(tmp_path / "one", {**DDP, "base": {**DDP["base"], "resources": {"gpus": 1}}})
    two = write_sweep(tmp_path, DDP)
    (job_one,), (job_two,) = expand(load_sweep(one)), expand(load_sweep(two))
    assert job_one.id == job_two.id and job_one.resources is None and job_two.resources.gpus == 2


@pytest.mark.slow
def test_a_killed_rank_fails_the_job_and_the_next_submit_resumes_it(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path, DDP)
    # the reference: the same job (same id) as one process, in this process
    single = tmp_path / "single"
    cli(single, "expand", str(sweep))
    result = CliRunner().invoke(main, ["submit", "--backend", "inline", "--root", str(single)])
    assert result.exit_code == 0 and "1 ok" in result.output, result.output

    root = tmp_path / "ranks"
    cli(root, "expand", str(sweep))
    (job,) = load_plan(root / "ddp")
    folder = run_dir(root / "ddp", job.id)
    proc = start_harness(root, "submit", "--workers", "1", env={HOLD_ENV: f"{job.id}:6"})
    _wait_for(lambda: (folder / "ranks.log").exists() and "holding at step 6" in (folder / "ranks.log").read_text())
    os.kill(_wait_for(lambda: _rank_pid(folder / "launch.json", 1)), signal.SIGKILL)
    out, _ = proc.communicate(timeout=120)
    killed = read_summary(folder)
    assert killed["status"] == "failed", out
    assert "rank : 1 (local_rank: 1)" in killed["error"] and "SIGKILL" in killed["error"], killed["error"]
    assert "1 failed" in out

    harness(root, "submit", "--workers", "1")  # resumes both ranks from step 6
    a, b = results(single, "ddp"), results(root, "ddp")
    assert b["status"].tolist() == ["ok"] and a["id"].tolist() == b["id"].tolist()
    np.testing.assert_allclose(b["test_rel_l2"], a["test_rel_l2"], rtol=1e-5)
    rows = [pd.read_parquet(run_dir(r / "ddp", job.id) / "epochs.parquet") for r in (single, root)]
    assert rows[1]["step"].tolist() == rows[0]["step"].tolist() == [0, 3, 6, 9, 12]  # none twice
    np.testing.assert_allclose(rows[1]["val_rel_l2"], rows[0]["val_rel_l2"], rtol=1e-5)
    np.testing.assert_allclose(rows[1]["train_loss"][1:], rows[0]["train_loss"][1:], rtol=1e-5)
