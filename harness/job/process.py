"""The process settings every job runs with, torch-free so that they can be applied before torch loads.

A CPU train step allocates and frees the same activation-sized tensors every step. With the C library's defaults
each comes back from the kernel as fresh 4 KiB pages, and faulting them in was up to half of a step:

- ``keep_freed_memory`` (in the job's own process): glibc keeps freed blocks of up to 32 MiB for reuse
  (64x64, width 32, batch 32: 47 -> 72 samples/s);
- ``JOB_ENV`` (set by the backend that starts the process, since torch reads it once, when it loads): torch
  backs allocations of 2 MiB and more with transparent huge pages (64x64, width 128, modes 32: 3.6 -> 8.0
  samples/s). A user's own value wins (``THP_MEM_ALLOC_ENABLE=0`` turns it off).
"""

from __future__ import annotations

import ctypes
import functools
import os

JOB_ENV = {"THP_MEM_ALLOC_ENABLE": "1"}


def user_threads() -> int | None:
    """The CPU threads the user asked every job for with ``OMP_NUM_THREADS`` (its first level, a positive
    integer), else None. It wins over the backend's share of the cores, as it does in a Slurm job's script."""
    first = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    return int(first) if first.isdigit() and int(first) > 0 else None


def apply_job_env() -> None:
    """Set ``JOB_ENV`` in this process's environment where the user has not, for the processes it starts."""
    for key, value in JOB_ENV.items():
        os.environ.setdefault(key, value)


def job_env_exports() -> list[str]:
    """``JOB_ENV`` as shell lines for a batch script, a value already in the job's environment winning."""
    return [f"export {key}=${{{key}:-{value}}}" for key, value in JOB_ENV.items()]


@functools.cache
def keep_freed_memory() -> None:
    """Let glibc keep freed blocks of up to 32 MiB for reuse instead of unmapping them (once per process).

    Larger blocks are still mapped and unmapped (``JOB_ENV`` makes those huge pages). A no-op where the C
    library is not glibc.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
    libc.mallopt(m_mmap_threshold, 32 << 20)  # glibc's largest accepted value
    libc.mallopt(m_trim_threshold, 1 << 30)
    libc.mallopt(m_top_pad, 256 << 20)
