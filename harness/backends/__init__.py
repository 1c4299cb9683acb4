"""The torch-free rules of the backends: what they offer a job, checked at expand (no torch, no submitit).

``SlurmResources`` is a sweep's `slurm:` block (each key checked at expand, CLI flags override at submit);
``largest_device`` is the biggest memory any backend could give one job, against which expand refuses a
model that cannot fit (``harness.models.train_memory``).

Jobs that span several ranks: a stage's ``resources: {gpus: G, nodes: M}`` (``pretrain.resources`` for
pretraining, ``resources`` for the downstream stages; default one of each) asks for G ranks per node on M nodes.
They do not change what is learnt (``harness.train.distributed``), so they stay out of the job's id: expand puts
them on the job (``Job.resources``); ``offer`` and ``resource_problem`` check them against what a backend offers
(the launch is ``harness.backends.launch``).

The backends themselves: the ``Backend`` protocol and the registry in ``harness.backends.interface``; ``local``,
``inline`` and ``slurm`` implement it.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field, fields
from typing import Any

from harness.errors import BackendError, DataError
from harness.job import Job, Point, Resources

GIB = 1 << 30


class SlurmSettingError(BackendError):
    """A bad `slurm:` setting; ``key`` names it, so expand can point at its line in the sweep file."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


@dataclass
class SlurmResources:
    """What each array task asks Slurm for; from the sweep file's `slurm:` block, overridden by CLI flags.

    `jobs_per_gpu` K packs K jobs per allocated GPU into one array task (each a subprocess with its own
    CUDA_VISIBLE_DEVICES share); on a CPU-only request (gpus_per_node 0) K jobs share the task's CPUs.
    """

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    time_min: int = 60
    gpus_per_node: int = 1
    cpus_per_task: int = 4
    mem_gb: float | None = None
    constraint: str | None = None
    setup: list[str] = field(default_factory=list)
    array_parallelism: int = 64
    jobs_per_gpu: int = 1

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> SlurmResources:
        """Build from a `slurm:` block; None values mean "not given". Unknown keys or bad values raise
        ``SlurmSettingError`` naming the setting."""
        data = {k: v for k, v in (data or {}).items() if v is not None}
        defaults = cls()
        valid = {f.name: getattr(defaults, f.name) for f in fields(cls)}
        unknown = sorted(set(data) - set(valid), key=str)
        if unknown:
            listing = ", ".join(f"{k} (default {v!r})" for k, v in valid.items())
            raise SlurmSettingError(unknown[0], f"unknown slurm setting(s) {', '.join(map(str, unknown))}; "
                                                f"valid settings: {listing}")
        res = cls(**data)
        for name in ("time_min", "cpus_per_task", "array_parallelism", "jobs_per_gpu", "gpus_per_node"):
            value, low = getattr(res, name), 0 if name == "gpus_per_node" else 1
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise SlurmSettingError(name, f"slurm.{name} must be an integer >= {low}, but got {value!r}")
        mem = res.mem_gb
        if mem is not None and (isinstance(mem, bool) or not isinstance(mem, int | float) or not 0 < mem < math.inf):
            raise SlurmSettingError("mem_gb", f"slurm.mem_gb must be a finite number > 0, but got {mem!r}")
        if not isinstance(res.setup, list) or not all(isinstance(line, str) for line in res.setup):
            raise SlurmSettingError("setup", f"slurm.setup must be a list of shell lines, but got {res.setup!r}")
        return res

    @property
    def pack(self) -> int:
        """Jobs per array task."""
        return self.jobs_per_gpu * max(1, self.gpus_per_node)


@dataclass(frozen=True)
class Device:
    """The largest memory a backend offers one job, and where it is (for messages)."""

    bytes: int
    what: str


def gpu_memory() -> list[int]:
    """Total memory of each GPU visible here, in bytes, from ``nvidia-smi`` (no torch); [] without one."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return []
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    sizes = [int(line) << 20 for line in out.stdout.split() if line.isdigit()]  # MiB
    if visible is not None:
        keep = {int(i) for i in visible.split(",") if i.strip().isdigit()}
        sizes = [size for i, size in enumerate(sizes) if i in keep]
    return sizes


def host_memory() -> int:
    """This machine's RAM in bytes."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_host_memory(need: int, what: str) -> None:
    """Refuse (DataError) ``what`` (generating a dataset) when its ``need`` bytes exceed this machine's memory,
    before any of it is allocated."""
    have = host_memory()
    if need > have:
        raise DataError(f"{what} needs about {need / GIB:,.1f} GiB of memory but this machine has "
                        f"{have / GIB:,.1f} GiB: ask for fewer samples or a lower resolution")


def largest_host(slurm: SlurmResources | None = None) -> Device:
    """The largest host memory any backend offers one job (where its data are generated): this machine's RAM, or
    the memory a Slurm task asks for (``slurm.mem_gb``), whichever is larger."""
    options = [Device(host_memory(), f"this machine's {host_memory() / GIB:.0f} GiB of RAM")]
    if slurm is not None and slurm.mem_gb:
        options.append(Device(int(slurm.mem_gb * GIB), f"slurm.mem_gb = {slurm.mem_gb:g}"))
    return max(options, key=lambda d: d.bytes)


def largest_device(slurm: SlurmResources | None = None) -> Device:
    """The largest memory any backend offers one job: the biggest GPU visible here, or the largest host memory
    (``largest_host``: the local backend on the CPU, or a Slurm task's ``slurm.mem_gb``), whichever is largest.

    A login node without the cluster's GPUs still sees its own RAM, which bounds what it can check: the rule
    refuses models that fit nowhere, not every model that might not fit a given GPU.
    """
    options = [largest_host(slurm)]
    options += [Device(size, f"the {size / GIB:.0f} GiB GPU visible here") for size in gpu_memory()]
    return max(options, key=lambda d: d.bytes)


# --- jobs that span several ranks ------------------------------------------------------------------------------------


def shape(job: Job) -> tuple[int, int]:
    """(ranks per node, nodes) a job runs as ((1, 1) for a job without resources)."""
    res = job.resources or Resources()
    return res.gpus, res.nodes


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


def resource_problem(point: Point, stages: list[str], offered: tuple[int, int, str],
                     tuned: tuple[str, ...] = ()) -> tuple[str, str] | None:
    """(config key, message) when a training stage among ``stages`` of ``point`` asks for more ranks than
    ``offered``, or a tuned stage (in ``tuned``) for several; else None (the values are integers >= 1, checked by
    the schema)."""
    per_node, nodes, where = offered
    for stage in stages:
        if stage == "zeroshot":
            continue  # evaluates only, in one process
        key = "pretrain.resources" if stage == "pretrain" else "resources"
        res = point.pretrain.resources if stage == "pretrain" else point.resources
        assert res is not None  # a point's pretraining has its resources (harness.job.Point)
        if stage in tuned and res.world_size > 1:
            return f"{key}.gpus", f"{stage} jobs are tuned (tune.stages), and a trial runs as one rank; remove {key}"
        if res.gpus > per_node:
            return f"{key}.gpus", (f"{key}.gpus = {res.gpus} but {per_node} per node are available ({where}); "
                                   f"ask for at most {per_node}")
        if res.nodes > nodes:
            return f"{key}.nodes", (f"{key}.nodes = {res.nodes} but the local backend has one node; use 1, or "
                                    "a `slurm:` block for several nodes")
    return None
