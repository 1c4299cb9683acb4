"""Slurm requests a cluster can satisfy, and why queued jobs wait.

``check_request`` compares a sweep's request (``SlurmResources``, and the ranks of jobs that span several:
``rank_problems``) with the partition's nodes and limits before anything is queued (`sinfo`: CPUs, memory and
GPUs per node, nodes; `scontrol show partition`: time, per-node and node-count limits) and refuses what can never
run, in one line naming the setting, the value, the limit and the fix: otherwise Slurm queues it and it sits
pending forever (reason ``PartitionConfig``).

``pending_reasons`` groups a sweep's pending jobs by Slurm's reason (`squeue %r`) for ``harness status``,
flagging the reasons that never clear by waiting. Parsing is pure, so it is tested without a cluster.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.backends import SlurmResources, shape
from harness.backends.slurm_state import read_submitted, run_cmd
from harness.errors import BackendError
from harness.job import Job

# squeue reasons that waiting never clears: the request exceeds what the partition or account allows, or a
# dependency failed. The fix is `harness cancel`, a change to the slurm: settings (or the failed job), a submit.
NEVER_CLEARS = frozenset({
    "PartitionConfig", "PartitionNodeLimit", "PartitionTimeLimit", "DependencyNeverSatisfied", "BadConstraints",
    "InvalidAccount", "InvalidQOS", "PartitionDown", "PartitionInactive", "AccountNotAllowed", "QOSNotAllowed",
})
FLAGS = {"cpus_per_task": "--cpus", "mem_gb": "--mem", "gpus_per_node": "--gpus-per-node", "time_min": "--time"}


@dataclass(frozen=True)
class PartitionLimits:
    """The most one job can get in a partition: CPUs, memory (MB) and GPUs of its largest node, the partition's
    time limit in minutes (None: unlimited) and how many nodes one job can span."""

    name: str
    cpus: int
    mem_mb: int
    gpus: int
    time_min: int | None
    nodes: int = 1


def parse_time_limit(text: str) -> int | None:
    """Slurm's time limit ('infinite', 'UNLIMITED', 'MM', 'HH:MM:SS', 'D-HH:MM:SS', 'D-HH') in minutes."""
    text = text.strip()
    if not text or text.upper() in ("INFINITE", "UNLIMITED", "NONE", "N/A"):
        return None
    days, _, rest = text.rpartition("-")
    parts = [int(p) for p in rest.split(":")]
    if days:  # D-HH[:MM[:SS]]
        parts += [0] * (3 - len(parts))
        h, m, s = parts
    elif len(parts) == 1:  # MM
        h, m, s = 0, parts[0], 0
    else:  # MM:SS or HH:MM:SS
        h, m, s = ([0] + parts)[-3:]
    return (int(days or 0) * 24 + h) * 60 + m + (1 if s else 0)


def parse_gpus(gres: str) -> int:
    """GPUs in a node's GRES ('gpu:2', 'gpu:a100:4(S:0-1),shard:8', '(null)')."""
    return sum(int(n) for n in re.findall(r"gpu(?::[\w.-]+)?:(\d+)", gres))


def parse_limits(name: str, sinfo: str, partition: str) -> PartitionLimits:
    """``PartitionLimits`` from `sinfo -h -N -p NAME -o %c|%m|%G` lines and `scontrol show partition -o NAME`."""
    nodes = [line.split("|") for line in sinfo.splitlines() if line.count("|") >= 2]
    if not nodes:
        raise BackendError(f"Slurm partition {name!r} has no nodes (sinfo); pick another with --partition")
    cpus = max(int(c.rstrip("+")) for c, _, _ in (n[:3] for n in nodes))
    mem = max(int(m.rstrip("+")) for _, m, _ in (n[:3] for n in nodes))
    gpus = max(parse_gpus(g) for _, _, g in (n[:3] for n in nodes))
    fields = dict(re.findall(r"(\w+)=(\S+)", partition))
    per_node = fields.get("MaxCPUsPerNode", "UNLIMITED")
    if per_node.isdigit():
        cpus = min(cpus, int(per_node))
    mem_limit = fields.get("MaxMemPerNode", "UNLIMITED")
    if mem_limit.isdigit():
        mem = min(mem, int(mem_limit))
    max_nodes = fields.get("MaxNodes", "UNLIMITED")
    spans = min(len(nodes), int(max_nodes)) if max_nodes.isdigit() else len(nodes)
    return PartitionLimits(name, cpus, mem, gpus, parse_time_limit(fields.get("MaxTime", "UNLIMITED")), spans)


def partition_limits(partition: str | None) -> PartitionLimits:
    """The limits of ``partition`` (None: the cluster's default partition) as the cluster reports them."""
    fix = "check that slurmctld is up (`scontrol ping`)"
    if partition is None:
        names = run_cmd(["sinfo", "-h", "-o", "%P"], fix).split()
        partition = next((p.rstrip("*") for p in names if p.endswith("*")), names[0] if names else "")
    sinfo = run_cmd(["sinfo", "-h", "-N", "-p", partition, "-o", "%c|%m|%G"], fix)
    detail = run_cmd(["scontrol", "show", "partition", "-o", partition], fix)
    return parse_limits(partition, sinfo, detail)


def request_problems(res: SlurmResources, limits: PartitionLimits) -> list[str]:
    """What in ``res`` exceeds ``limits``, one sentence each with the fix (empty when it can run)."""
    asked = {"cpus_per_task": (res.cpus_per_task, limits.cpus, "CPUs"),
             "gpus_per_node": (res.gpus_per_node, limits.gpus, "GPUs"),
             "mem_gb": (res.mem_gb, limits.mem_mb / 1024, "GB of memory"),
             "time_min": (res.time_min, limits.time_min, "minutes")}
    out = []
    for key, (value, limit, unit) in asked.items():
        if value is None or limit is None or value <= limit:
            continue
        most = f"{limit:g}" if isinstance(limit, float) else str(limit)
        where = "time limit is" if key == "time_min" else "largest node has"
        out.append(f"slurm.{key} = {value} but partition {limits.name}'s {where} {most} {unit}, so its jobs could "
                   f"never start; set slurm.{key}: {most} (or less) in the sweep file or pass {FLAGS[key]} {most}")
    return out


def rank_problems(jobs: list[Job], res: SlurmResources, limits: PartitionLimits) -> list[str]:
    """What in the ranks of ``jobs`` (their ``resources``: G ranks per node on M nodes, each rank a Slurm task
    with ``slurm.cpus_per_task`` CPUs and, unless ``slurm.gpus_per_node`` is 0, one GPU) exceeds ``limits``, one
    sentence each with the fix (empty when they can run)."""
    out = []
    asks = sorted({("pretrain.resources" if j.stage == "pretrain" else "resources", *shape(j)) for j in jobs})
    for key, per_node, nodes in asks:
        if per_node * res.cpus_per_task > limits.cpus:
            fits = limits.cpus // per_node
            fix = f"set slurm.cpus_per_task: {fits} (or less), or " if fits else ""
            out.append(f"{key}.gpus = {per_node} ranks per node, each with slurm.cpus_per_task = {res.cpus_per_task}"
                       f" CPUs, but partition {limits.name}'s largest node has {limits.cpus} CPUs; {fix}ask for at "
                       f"most {limits.cpus // res.cpus_per_task} ranks per node (and more nodes)")
        if res.gpus_per_node and per_node > limits.gpus:
            out.append(f"{key}.gpus = {per_node} but partition {limits.name}'s largest node has {limits.gpus} GPUs; "
                       f"ask for at most {limits.gpus} per node and more nodes")
        if nodes > limits.nodes:
            out.append(f"{key}.nodes = {nodes} but a job of partition {limits.name} spans at most {limits.nodes} "
                       f"node(s); ask for at most {limits.nodes}")
    return out


def check_request(res: SlurmResources, jobs: list[Job]) -> None:
    """Refuse a request the partition can never satisfy (``BackendError``, one line), before anything is queued:
    ``res`` itself and the ranks of ``jobs``."""
    limits = partition_limits(res.partition)
    problems = request_problems(res, limits) + rank_problems(jobs, res, limits)
    if problems:
        raise BackendError("; ".join(problems))


def parse_reasons(text: str) -> dict[str, str]:
    """Slurm id -> pending reason from `squeue -h -r -t PD -o %i|%r` output."""
    out = {}
    for line in text.splitlines():
        sid, _, reason = line.strip().partition("|")
        if sid and reason:
            out[sid] = reason
    return out


def describe_reasons(reasons: list[str]) -> list[str]:
    """Lines for ``harness status``: pending jobs per Slurm reason, those that never clear flagged."""
    lines = []
    for reason, n in sorted(Counter(reasons).items(), key=lambda kv: (-kv[1], kv[0])):
        line = f"  pending {n}: Slurm reason {reason}"
        if reason in NEVER_CLEARS:
            line += (" -- this never clears by waiting: `harness cancel`, fix the slurm: settings (or the failed "
                     "dependency), then `harness submit`")
        lines.append(line)
    return lines


def pending_reasons(sweep_path: Path, states: dict[str, Any]) -> list[str]:
    """``describe_reasons`` of the sweep's pending jobs (one squeue call; none when nothing is pending)."""
    pending = {jid for jid, state in states.items() if state == "pending"}
    submitted = {sid: jid for jid, sid in read_submitted(sweep_path).items() if jid in pending}
    if not submitted:
        return []
    text = run_cmd(["squeue", "-h", "-r", "-t", "PD", "-o", "%i|%r"], "check that slurmctld is up")
    reasons = parse_reasons(text)
    return describe_reasons([reasons[sid] for sid in submitted if sid in reasons])
