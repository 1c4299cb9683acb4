"""The smoke sweep through the `harness` command on the real Slurm cluster, against the local backend."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from harness.store.collect import collect
from harness.store.folders import load_plan
from tests.helpers import SWEEPS, cli, harness

SMOKE = SWEEPS / "smoke.yaml"
pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def smoke_slice(folder: Path) -> Path:
    """sweeps/smoke.yaml at its smallest downstream size only: both pretrainings, both shifts, all three inits
    (14 of its 38 jobs, the same ids, since an id is a hash of the job's config)."""
    spec = yaml.safe_load(SMOKE.read_text())
    spec["matrix"]["downstream.n_train"] = spec["matrix"]["downstream.n_train"][:1]
    path = folder / "smoke.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_the_smoke_sweep_on_slurm_gives_the_local_results_job_for_job(slurm_cluster: str, smoke_results: Path,
                                                                      tmp_path: Path) -> None:
    local, remote = smoke_results, tmp_path / "slurm"
    cli(remote, "expand", str(smoke_slice(tmp_path)))
    started = time.time()
    out = harness(remote, "submit", "--backend", "slurm", "--gpus-per-node", "0", "--cpus", "1").stdout
    assert "queued" in out and time.time() - started < 60  # returns without waiting for the jobs
    deadline = time.time() + 600
    while time.time() < deadline:
        status = cli(remote, "status")
        if "pending" not in status and "running" not in status and "missing" not in status:
            break
        time.sleep(5)
    assert "failed" not in status, status
    again = harness(remote, "submit", "--backend", "slurm", "--gpus-per-node", "0").stdout
    planned = len(load_plan(remote / "smoke"))
    assert f"0 of {planned} jobs to run" in again
    harness(remote, "cancel")
    a, b = (collect(r / "smoke").set_index("id").sort_index() for r in (local, remote))
    assert len(b) == planned == 14 and set(b.index) <= set(a.index)
    assert (a["status"] == "ok").all() and (b["status"] == "ok").all()
    assert (a.loc[b.index, "test_rel_l2"] - b["test_rel_l2"]).abs().max() < 1e-3 * b["test_rel_l2"].max()
    # the paper's first finding already shows: at the smallest N, fine-tuning beats training from scratch
    small = a[a["downstream.n_train"] == a["downstream.n_train"].min()]
    pairs = small.pivot_table(index=["model.width", "downstream.shift"], columns="stage", values="test_rel_l2")
    assert (pairs["finetune"] < pairs["scratch"]).all(), pairs
