"""What the backends offer a job, torch- and submitit-free so that `harness expand` checks a sweep against it.

``SlurmResources`` is a sweep's `slurm:` block (each key checked at expand, CLI flags override at submit);
``largest_device`` is the biggest memory any backend could give one job, against which expand refuses a
model that cannot fit (``harness.models.size.train_memory``).
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from dataclasses import dataclass, field, fields
from typing import Any

from harness.errors import BackendError

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


def largest_device(slurm: SlurmResources | None = None) -> Device:
    """The largest memory any backend offers one job: the biggest GPU visible here, this machine's RAM (local
    backend on the CPU), or the memory a Slurm task asks for (``slurm.mem_gb``), whichever is largest.

    A login node without the cluster's GPUs still sees its own RAM, which bounds what it can check: the rule
    refuses models that fit nowhere, not every model that might not fit a given GPU.
    """
    options = [Device(host_memory(), f"this machine's {host_memory() / GIB:.0f} GiB of RAM")]
    options += [Device(size, f"the {size / GIB:.0f} GiB GPU visible here") for size in gpu_memory()]
    if slurm is not None and slurm.mem_gb:
        options.append(Device(int(slurm.mem_gb * GIB), f"slurm.mem_gb = {slurm.mem_gb:g}"))
    return max(options, key=lambda d: d.bytes)
