"""Backends run a sweep's jobs; each implements the small `Backend` protocol and calls only `run_job` and the store.

- ``local``: worker processes on this machine, K per visible GPU or sharing the CPU (the default);
- ``inline``: one job after the other in the calling process, so a debugger can step into a job;
- ``slurm``: job arrays queued through submitit, state read back from sacct.

``harness submit`` asks the backend for the state of every job (``status``), picks what to run with
``harness.backends.select.select`` (the same rule for all), and hands those jobs to ``submit``. This module
imports no backend until one is asked for (`get_backend`), so it stays light.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Protocol

from harness.job import Job
from harness.store import State

BACKENDS = {"local": "harness.backends.local:LocalBackend", "inline": "harness.backends.inline:InlineBackend",
            "slurm": "harness.backends.slurm:SlurmBackend"}


class Backend(Protocol):
    """What every backend does for `harness submit`, `harness status` and `harness cancel`."""

    def status(self, sweep_path: Path, jobs: list[Job]) -> dict[str, State]:
        """Job id -> state for ``jobs``: the run folders, merged with the backend's queue if it has one."""
        ...

    def submit(self, jobs: list[Job], plan: list[Job], sweep_path: Path) -> str:
        """Run or queue ``jobs`` (chosen from the sweep's ``plan``, pretraining first); returns what to print."""
        ...

    def cancel(self, sweep_path: Path) -> int:
        """Stop the sweep's queued and running jobs; returns how many it stopped."""
        ...


def get_backend(name: str, *, spec: dict[str, Any] | None = None, **options: Any) -> Backend:
    """The backend called ``name`` (one of ``BACKENDS``), configured from the sweep file's mapping ``spec`` (its
    `slurm:` block) and the CLI ``options`` it reads (workers, jobs_per_gpu, verbose, Slurm resources)."""
    module, _, cls = BACKENDS[name].partition(":")
    return getattr(importlib.import_module(module), cls).from_options(spec or {}, options)


def backend_of(sweep_path: Path, spec: dict[str, Any] | None = None) -> Backend:
    """The backend that knows most about a submitted sweep: Slurm once it queued any of its jobs, else local."""
    from harness.backends.slurm_state import read_submitted

    return get_backend("slurm" if read_submitted(sweep_path) else "local", spec=spec)
