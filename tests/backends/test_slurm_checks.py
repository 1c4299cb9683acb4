"""Slurm requests a cluster can satisfy, and why jobs wait (issue 16): the parsing on the cluster's own text, and
on the real single-node Slurm (2 CPUs) a refused request and a pending reason in `harness status`."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from harness.backends import SlurmResources
from harness.backends.slurm_checks import describe_reasons, parse_limits, parse_time_limit, request_problems
from harness.job.hooks import HOLD_ENV
from harness.store.folders import load_plan
from tests.helpers import TINY, cli, harness, write_sweep

# What this CI's cluster says (sinfo -h -N -p debug -o %c|%m|%G; scontrol show partition -o debug, abridged).
SINFO = "2|21695|gpu:2\n"
PARTITION = ("PartitionName=debug AllowGroups=ALL Default=YES MaxNodes=UNLIMITED MaxTime=UNLIMITED "
             "MaxCPUsPerNode=UNLIMITED Nodes=vm State=UP TotalCPUs=2 MaxMemPerNode=UNLIMITED")


def test_the_request_is_compared_with_the_partitions_largest_node_and_time_limit() -> None:
    limits = parse_limits("debug", SINFO, PARTITION)
    assert (limits.cpus, limits.mem_mb, limits.gpus, limits.time_min) == (2, 21695, 2, None)
    assert request_problems(SlurmResources(cpus_per_task=2, gpus_per_node=2, mem_gb=20), limits) == []
    [cpus] = request_problems(SlurmResources(cpus_per_task=4, gpus_per_node=1), limits)
    assert "slurm.cpus_per_task = 4" in cpus and "largest node has 2 CPUs" in cpus and "--cpus 2" in cpus
    capped = parse_limits("short", "64|512000|gpu:a100:8(S:0-1),shard:4\n",
                          "PartitionName=short MaxTime=1-02:00:00 MaxCPUsPerNode=16")
    assert (capped.cpus, capped.gpus, capped.time_min) == (16, 8, 26 * 60)
    [time_limit] = request_problems(SlurmResources(time_min=2000, cpus_per_task=8), capped)
    assert "time limit is 1560 minutes" in time_limit and "--time 1560" in time_limit
    assert [parse_time_limit(t) for t in ("infinite", "30", "1:30:00", "2-00:00:00", "45:30")] == \
        [None, 30, 90, 2880, 46]


def test_pending_reasons_that_never_clear_are_flagged() -> None:
    lines = describe_reasons(["Dependency", "PartitionConfig", "Dependency"])
    assert lines[0] == "  pending 2: Slurm reason Dependency"
    assert "PartitionConfig -- this never clears by waiting" in lines[1]


@pytest.mark.slurm
def test_on_slurm_a_request_above_the_nodes_cpus_is_refused_and_a_pending_reason_is_shown(
        slurm_cluster: str, tmp_path: Path) -> None:
    root = tmp_path / "results"
    spec = {**TINY, "name": "slurmwhy", "matrix": {"init": ["pretrained"], "downstream.n_train": [8]}}
    spec["base"] = {**TINY["base"], "model": {"width": 4, "modes": 4}}
    cli(root, "expand", str(write_sweep(tmp_path, spec)))
    refused = harness(root, "submit", "--backend", "slurm", "--gpus-per-node", "0", "--cpus", "4", check=False)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "slurm.cpus_per_task = 4" in refused.stderr and "largest node has 2 CPUs" in refused.stderr
    assert "--cpus 2" in refused.stderr and not (root / "slurmwhy" / "slurm" / "submitted.json").exists()

    pretrain = next(j for j in load_plan(root / "slurmwhy") if j.stage == "pretrain")
    env = {HOLD_ENV: f"{pretrain.id}:0"}  # the pretraining holds, so its fine-tuning waits on it
    harness(root, "submit", "--backend", "slurm", "--gpus-per-node", "0", "--cpus", "1", env=env)
    deadline, status = time.time() + 60, ""
    while "Slurm reason Dependency" not in status and time.time() < deadline:
        status = cli(root, "status")
        time.sleep(1)
    assert "pending 1: Slurm reason Dependency" in status, status
    harness(root, "cancel")
