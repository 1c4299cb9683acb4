"""Jobs of several ranks on Slurm (issue 19): one Slurm job with a task per rank, its ranks checked against the
partition at submit, and on the real single-node cluster (2 CPUs) a 2-rank job that trains, is requeued mid-run
(`scontrol requeue`) and resumes to the result of the uninterrupted single process."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.backends import SlurmResources, offer, resource_problem
from harness.backends.slurm import plan_arrays, submit
from harness.backends.slurm_checks import parse_limits, rank_problems
from harness.backends.slurm_state import read_submitted
from harness.errors import BackendError
from harness.job import Job, JobConfig, Model, Resources
from harness.job.hooks import HOLD_ENV
from harness.job.run import run_job
from harness.store.folders import read_summary, run_dir
from tests.backends.test_launch import DDP
from tests.backends.test_slurm_checks import PARTITION, SINFO
from tests.helpers import write_sweep
from tests.slurm_util import ckpt_rows, expand, release_requeued, sacct, wait_for, wait_settled

# One rank per CPU, no GPU: gloo ranks on the cluster's 2 CPUs.
RANKS = {"cpus_per_task": 1, "time_min": 10, "gpus_per_node": 0}


def job(jid: str, stage: str = "scratch", gpus: int = 1, nodes: int = 1) -> Job:
    resources = Resources(gpus, nodes) if gpus * nodes > 1 else None
    return Job(jid, stage, "s", JobConfig(16, 0, Model()), resources=resources)


def test_jobs_of_several_ranks_get_arrays_of_their_own_shape_one_job_per_task() -> None:
    jobs = [job("a"), job("b", gpus=2), job("c"), job("d", gpus=2), job("e", gpus=2, nodes=2), job("f"),
            job("p", "pretrain", gpus=4)]
    got = [(c.stage, c.ranks, [[j.id for j in t] for t in c.tasks]) for c in plan_arrays(jobs, 4, pack=2)]
    assert got == [("pretrain", (4, 1), [["p"]]), ("downstream", (1, 1), [["a", "c"], ["f"]]),
                   ("downstream", (2, 1), [["b"], ["d"]]), ("downstream", (2, 2), [["e"]])]


def test_ranks_the_partition_cannot_hold_are_named_with_the_fix() -> None:
    limits = parse_limits("debug", SINFO, PARTITION)  # one node of 2 CPUs and 2 GPUs
    assert limits.nodes == 1
    assert rank_problems([job("a", gpus=2)], SlurmResources(cpus_per_task=1), limits) == []
    [cpus] = rank_problems([job("a", gpus=2)], SlurmResources(cpus_per_task=2, gpus_per_node=0), limits)
    assert cpus == ("resources.gpus = 2 ranks per node, each with slurm.cpus_per_task = 2 CPUs, but partition "
                    "debug's largest node has 2 CPUs; set slurm.cpus_per_task: 1 (or less), or ask for at most 1 "
                    "ranks per node (and more nodes)")
    big = [job("p", "pretrain", gpus=3, nodes=2)]
    _, gpus, nodes = rank_problems(big, SlurmResources(cpus_per_task=1, gpus_per_node=1), limits)
    assert gpus.startswith("pretrain.resources.gpus = 3 but partition debug's largest node has 2 GPUs")
    assert nodes == ("pretrain.resources.nodes = 2 but a job of partition debug spans at most 1 node(s); ask for "
                     "at most 1")


def test_expand_leaves_cpu_ranks_on_slurm_to_the_partition_check() -> None:
    four = {"pretrain": {"gpus": 1, "nodes": 1}, "downstream": {"gpus": 4, "nodes": 3}}
    assert resource_problem(four, ["scratch"], offer({"gpus_per_node": 0})) is None  # gloo ranks: checked at submit
    key, message = resource_problem(four, ["scratch"], offer({"gpus_per_node": 2}))
    assert key == "resources.gpus" and message.startswith("resources.gpus = 4 but 2 per node are available")


@pytest.mark.slurm
def test_ranks_the_cluster_cannot_hold_are_refused_at_submit(slurm_cluster: str, tmp_path: Path) -> None:
    root = tmp_path / "results"
    folder, [the_job] = expand(write_sweep(tmp_path, DDP), root)
    with pytest.raises(BackendError, match=r"resources\.gpus = 3 ranks per node, each with slurm\.cpus_per_task = 1 "
                                           r"CPUs, but partition debug's largest node has 2 CPUs; ask for at most 2"):
        submit([{**the_job, "resources": {"gpus": 3, "nodes": 1}}], root, SlurmResources.from_dict(RANKS))
    assert read_submitted(folder) == {}


@pytest.mark.slurm
def test_a_job_of_two_ranks_is_two_slurm_tasks_and_a_requeue_resumes_it(slurm_cluster: str, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    sweep_file = write_sweep(tmp_path, DDP)
    single = tmp_path / "single"  # the reference: the same job as one process, in this process
    _, [ref] = expand(sweep_file, single)
    assert run_job(ref, single)["status"] == "ok"

    root = tmp_path / "results"
    folder, [the_job] = expand(sweep_file, root)
    assert the_job.id == ref.id and the_job.resources.gpus == 2
    folder_run = run_dir(folder, the_job.id)
    monkeypatch.setenv(HOLD_ENV, f"{the_job.id}:6")  # both ranks wait after the checkpoint at step 6
    sid = submit([the_job], root, SlurmResources.from_dict(RANKS)).submitted[the_job.id]
    wait_for(lambda: [r["step"] for r in ckpt_rows(folder_run / "ckpt" / "last.pt")] == [0, 3, 6], 180,
             "two ranks to reach step 6", every=0.3)
    before = ckpt_rows(folder_run / "ckpt" / "last.pt")
    subprocess.run(["scontrol", "requeue", sid], check=True)
    release_requeued(sid)  # the resumed run passes step 6 without holding: its evaluation is in the checkpoint
    assert wait_settled(folder, timeout=180) == {the_job.id: "ok"}
    wait_for(lambda: sacct(sid)[sid].state is None, 60, "both ranks to exit and Slurm to record COMPLETED")

    assert "REQUEUED" in sacct(sid, duplicates=True)
    logs = "".join(p.read_text() for p in (folder / "slurm" / "logs").glob("*/*_log.out"))
    assert sorted(re.findall(r"rank (\d) of 2, process group at", logs)) == ["0", "0", "1", "1"]  # twice each
    assert [p.name for p in (folder / "runs").iterdir()] == [the_job.id]
    epochs = pd.read_parquet(folder_run / "epochs.parquet")
    assert epochs["step"].tolist() == [0, 3, 6, 9, 12]  # one result, no evaluation twice
    assert epochs["seconds"][:3].tolist() == [r["seconds"] for r in before]  # the rows from before the requeue
    reference = pd.read_parquet(run_dir(single / "ddp", ref.id) / "epochs.parquet")
    np.testing.assert_allclose(epochs["val_rel_l2"], reference["val_rel_l2"], rtol=1e-5)
    [test, test_ref] = [read_summary(run_dir(r / "ddp", ref.id))["test_rel_l2"] for r in (root, single)]
    np.testing.assert_allclose(test, test_ref, rtol=1e-5)
