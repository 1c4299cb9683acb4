"""Fused groups on Slurm (`pack:` with `--backend slurm`): the plan puts one fused group in each array task, with the
pretrainings' afterok order kept (pure), and on the real single-node cluster a packed sweep of four tiny scratch jobs
runs as one array task on one GPU that trains them as one program, to each job's results alone (validation and test
errors within a relative 1e-5, as tests/e2e/test_fused_jobs.py), also when Slurm requeues the task mid-training."""

from __future__ import annotations

import dataclasses
import re
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from harness.backends.slurm import plan_arrays
from harness.backends.slurm_state import read_submitted
from harness.job.hooks import HOLD_ENV
from harness.job.run import run_job
from harness.store.folders import read_summary, run_dir
from harness.sweep.expand import expand
from harness.sweep.spec import load_sweep
from tests.e2e.test_fused_jobs import METRICS, PACKED
from tests.helpers import TINY, harness, write_sweep
from tests.slurm_util import ckpt_rows, release_requeued, sacct, wait_for, wait_settled
from tests.slurm_util import expand as expand_into

# Three pretrainings, each fine-tuned at two seeds and evaluated zero-shot (no `pack` on those: they train nothing),
# and two scratch jobs, packed two to a group.
STAGES = {"name": "plan", "base": TINY["base"], "pack": {"group": 2},
          "matrix": {"pretrain.seed": [0, 1, 2], "seed": [0, 1], "init": ["pretrained", "scratch", "zeroshot"]}}
# The cluster has MaxArraySize 4 and a node of 2 CPUs and 2 fake GPUs; the flags ask for 2 GPUs and 2 jobs per task,
# which is what the jobs' tasks would be without `pack`.
FLAGS = ("--backend", "slurm", "--cpus", "1", "--time", "10", "--gpus-per-node", "2", "--jobs-per-gpu", "1")


def test_the_plan_puts_one_fused_group_in_each_task_and_keeps_the_pretrainings_afterok(tmp_path: Path) -> None:
    jobs = expand(load_sweep(write_sweep(tmp_path, STAGES)))
    pretrainings = {j.id for j in jobs if j.stage == "pretrain"}
    chunks = plan_arrays(jobs, 4, pack=2, waiting=pretrainings)
    got = [(c.stage, c.fused, [sorted({str(j.stage) for j in t}) for t in c.tasks], [len(t) for t in c.tasks])
           for c in chunks]
    assert got == [("pretrain", True, [["pretrain"]] * 2, [2, 1]),
                   ("downstream", True, [["scratch"]], [2]),  # ready now
                   ("downstream", True, [["finetune"]] * 3, [2, 2, 2]),  # after their pretrainings
                   ("downstream", False, [["zeroshot"]] * 3, [2, 2, 2])]  # no group holds them: `pack` a task
    assert sorted(j.id for c in chunks for t in c.tasks for j in t) == sorted(j.id for j in jobs)
    for chunk in chunks:  # every array waits for the pretrainings of all its jobs, and for no other job
        assert set(chunk.after) == {j.depends_on for t in chunk.tasks for j in t} - {None}
    # each finetune group is the two seeds of one pretraining (held jobs are planned by the pretraining they wait for)
    assert all(len({j.depends_on for j in t}) == 1 for t in chunks[2].tasks)
    # without `pack` the same jobs are planned as they always were: `pack` jobs to a task, nothing fused
    plain = plan_arrays([dataclasses.replace(j, pack=None) for j in jobs], 4, pack=2, waiting=pretrainings)
    assert not any(c.fused for c in plain)
    assert [[len(t) for t in c.tasks] for c in plain] == [[2, 1], [2], [2, 2, 2, 2], [2, 2]]


# --------------------------------------------------------------------------------------------- the cluster


@pytest.fixture(scope="module")
def alone(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """The four jobs of the packed sweep, each run alone by `run_job` in this process: their summary rows by id."""
    tmp = tmp_path_factory.mktemp("alone")
    jobs = expand(load_sweep(write_sweep(tmp, PACKED)))
    return pd.DataFrame([run_job(dataclasses.replace(job, pack=None), tmp / "results") for job in jobs])


def submitted(tmp_path: Path, env: dict[str, str] | None = None) -> tuple[Path, list[Any], dict[str, str]]:
    """Expand the packed sweep of four under ``tmp_path`` and submit it with the slurm backend (the real command):
    (sweep folder, jobs, job id -> Slurm id)."""
    root = tmp_path / "results"
    folder, jobs = expand_into(write_sweep(tmp_path, PACKED), root)
    harness(root, "submit", *FLAGS, env=env)
    return folder, jobs, read_submitted(folder)


def logs(folder: Path) -> str:
    return "".join(p.read_text() for p in sorted((folder / "slurm" / "logs").glob("*/*_log.*")))


def assert_equal_to_alone(folder: Path, alone: pd.DataFrame) -> pd.DataFrame:
    """Every job of the sweep in ``folder`` ended ok with the metrics it has alone; returns its summary rows."""
    fused = pd.DataFrame([read_summary(run_dir(folder, job_id)) for job_id in alone["id"]])
    assert list(fused["status"]) == ["ok"] * 4 and list(fused["group_size"]) == [4] * 4
    for column in ("best_step", "steps_run"):
        assert list(fused[column]) == list(alone[column])
    for column in ("best_val_rel_l2", "test_rel_l2"):
        assert list(fused[column]) == pytest.approx(list(alone[column]), rel=1e-5)
    return fused[["id", *METRICS]]


@pytest.mark.slurm
def test_a_packed_sweep_on_slurm_is_one_task_on_one_gpu_that_equals_its_jobs_alone(
        slurm_cluster: str, tmp_path: Path, alone: pd.DataFrame) -> None:
    folder, jobs, ids = submitted(tmp_path)
    assert set(ids) == {j.id for j in jobs} and len(set(ids.values())) == 1  # one array task holds the group
    assert set(wait_settled(folder, timeout=120).values()) == {"ok"}
    text = logs(folder)
    # one program for the four, asking one GPU of the two a task of this sweep asks for without `pack`
    assert re.findall(r"running 4 of 4 job\(s\) with CUDA_VISIBLE_DEVICES=(\S*)", text) in (["0"], ["1"]), text
    assert f"training 4 job(s) as one fused group: {', '.join(j.id for j in jobs)}" in text
    assert "with CUDA_VISIBLE_DEVICES" not in text.split("fused group")[1]  # no process per job
    assert_equal_to_alone(folder, alone)


@pytest.mark.slurm
def test_a_fused_task_requeued_mid_training_resumes_each_job_to_its_results_alone(
        slurm_cluster: str, tmp_path: Path, alone: pd.DataFrame) -> None:
    first = alone["id"][0]
    folder, jobs, ids = submitted(tmp_path, env={HOLD_ENV: f"{first}:6"})  # the group waits at step 6
    (sid,) = set(ids.values())
    last = run_dir(folder, first) / "ckpt" / "last.pt"
    wait_for(lambda: "holding at step 6" in logs(folder), 90, "the group to hold at step 6", every=0.5)
    held = ckpt_rows(last)
    assert held[-1]["step"] == 6
    subprocess.run(["scontrol", "requeue", sid], check=True)
    release_requeued(sid)
    assert set(wait_settled(folder, timeout=120).values()) == {"ok"}
    assert "REQUEUED" in sacct(sid, duplicates=True)
    assert_equal_to_alone(folder, alone)
    # resumed, not run again from step 0: the rows before the requeue are the originals (their timings)
    epochs = pd.read_parquet(run_dir(folder, first) / "epochs.parquet")
    assert list(epochs["step"]) == [0, 3, 6, 9, 12]
    assert list(epochs["seconds"][: len(held)]) == [r["seconds"] for r in held]
