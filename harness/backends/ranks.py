"""Jobs that span several ranks: their `resources` and what a backend offers, checked at expand (pure: no torch,
no pandas; the launch is ``harness.backends.launch``).

A stage's ``resources: {gpus: G, nodes: M}`` (``pretrain.resources`` for pretraining, ``resources`` for the
downstream stages; default one of each) asks for G ranks per node on M nodes. They do not change what is learnt
(``harness.train.distributed``), so they stay out of the job's id: ``take_resources`` moves them from a point's
config onto the job.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from harness.backends.resources import SlurmResources, gpu_memory

DEFAULT = {"gpus": 1, "nodes": 1}


def take_resources(config: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Remove the resources from a resolved point config (in place); returns them per stage kind
    ({"pretrain": ..., "downstream": ...}), each {gpus, nodes} with the defaults filled in."""
    pretrain = config.get("pretrain", {}).pop("resources", None) or {}
    downstream = config.pop("resources", None) or {}
    return {"pretrain": {**DEFAULT, **pretrain}, "downstream": {**DEFAULT, **downstream}}


def shape(job: dict[str, Any]) -> tuple[int, int]:
    """(ranks per node, nodes) a job runs as ((1, 1) for a job without resources)."""
    res = {**DEFAULT, **job.get("resources", {})}
    return res["gpus"], res["nodes"]


def world_size(job: dict[str, Any]) -> int:
    """How many ranks a job runs as (1 for a job without resources)."""
    per_node, nodes = shape(job)
    return per_node * nodes


def offer(slurm: dict[str, Any] | None) -> tuple[int, int, str]:
    """(ranks per node, nodes, where from) a backend offers: a sweep with a `slurm:` block gets its
    ``gpus_per_node`` per node on any number of nodes (with ``gpus_per_node: 0``, gloo ranks on CPUs: any number
    here, the partition's CPUs and nodes are checked at submit, ``slurm_checks.rank_problems``); otherwise this
    machine: its visible GPUs, else its CPU cores (gloo ranks), on one node."""
    if slurm:
        per_node = SlurmResources.from_dict(slurm).gpus_per_node or sys.maxsize
        return per_node, sys.maxsize, f"slurm.gpus_per_node = {per_node}"
    gpus = len(gpu_memory())
    if gpus:
        return gpus, 1, f"{gpus} GPU(s) visible here"
    cores = os.cpu_count() or 1
    return cores, 1, f"no GPU visible here, {cores} CPU core(s) for gloo ranks"


def resource_problem(resources: dict[str, dict[str, int]], stages: list[str], offered: tuple[int, int, str],
                     tuned: tuple[str, ...] = ()) -> tuple[str, str] | None:
    """(config key, message) when a training stage among ``stages`` asks for more than ``offered``, or a tuned
    stage (in ``tuned``) for several ranks; else None. ``resources`` is ``take_resources``'s answer (values
    already checked to be integers >= 1)."""
    per_node, nodes, where = offered
    for stage in stages:
        if stage == "zeroshot":
            continue  # evaluates only, in one process
        key = "pretrain.resources" if stage == "pretrain" else "resources"
        res = resources["pretrain" if stage == "pretrain" else "downstream"]
        if stage in tuned and res["gpus"] * res["nodes"] > 1:
            return f"{key}.gpus", f"{stage} jobs are tuned (tune.stages), and a trial runs as one rank; remove {key}"
        if res["gpus"] > per_node:
            return f"{key}.gpus", (f"{key}.gpus = {res['gpus']} but {per_node} per node are available ({where}); "
                                   f"ask for at most {per_node}")
        if res["nodes"] > nodes:
            return f"{key}.nodes", (f"{key}.nodes = {res['nodes']} but the local backend has one node; use 1, or "
                                    "a `slurm:` block for several nodes")
    return None

