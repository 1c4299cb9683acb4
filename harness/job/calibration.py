"""What a job costs on a device besides its passes, and the sweep estimate's calibration on that device
(``harness.sweep.estimate.calibrate_jobs``): the kernels' passes timed (``harness.train.timing``) with a job
process's settings and threads, and the fixed seconds of a job and of an evaluation from real tiny jobs
(``run_job``).

On a CPU the calibration runs with the threads one job gets (``OMP_NUM_THREADS``, else one: a local worker's
share when ``--workers`` equals the cores). Timing a tiny model with more threads than the cores that are free
measures the threads waiting for each other, not the job: on this project's busy 2-core machine, two threads made
the reference study's small train step take 0.010-0.54 s from one timing to the next (one thread: 0.017-0.074 s),
and the former one-step calibration priced that study at 356 CPU-hours against the 5.8 h its jobs ran.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import torch

from harness.job import Downstream, Job, JobConfig, Model, TrainConfig
from harness.job.process import keep_freed_memory, user_threads
from harness.job.run import run_job
from harness.models import Kernel, Shape
from harness.train import Rate
from harness.train.timing import calibrate, time_passes

# The job timed for the fixed time per job: one step of a tiny FNO on a few generated Poisson samples.
OVERHEAD_JOB = Job("sc-calibrate", "scratch", "calibrate", JobConfig(
    8, 0, Model(width=4, modes=2), seed=0, train=TrainConfig(steps=1, batch_size=4),
    downstream=Downstream(system="poisson", n_train=4, n_val=2, n_test=2)))
OVERHEAD_EVALS = 21  # steps (each evaluated) of the second job timed


def job_seconds(device: torch.device | str = "cpu") -> tuple[float, float]:
    """(fixed seconds a job takes besides its passes and evaluations, fixed seconds an evaluation takes besides
    its passes: progress file, best weights, hooks), from real tiny jobs (``OVERHEAD_JOB``, ``run_job``, on the
    device a job picks) in a temporary root: one step and its two evaluations, and ``OVERHEAD_EVALS`` steps each
    evaluated, after a first run that generates the data and warms the code paths (the timed ones load their
    data from the cache, as most jobs of a sweep do); the tiny model's own passes are timed on ``device`` (where
    the jobs run) and taken off."""

    def timed_run(job: Job, root: str) -> float:
        shutil.rmtree(Path(root) / job.sweep / "runs", ignore_errors=True)
        start = time.perf_counter()
        run_job(job, root)
        return time.perf_counter() - start

    train = OVERHEAD_JOB.train
    assert train is not None  # a scratch job
    evaluated = dataclasses.replace(OVERHEAD_JOB, config=dataclasses.replace(
        OVERHEAD_JOB.config, train=dataclasses.replace(train, steps=OVERHEAD_EVALS, eval_every=1)))
    keep_freed_memory()
    step, forward = time_passes(Kernel(Shape.of(OVERHEAD_JOB.config.model, 8)), (train.batch_size,), device)[0]
    with tempfile.TemporaryDirectory(prefix="harness-calibrate-") as tmp:
        timed_run(OVERHEAD_JOB, tmp)
        one = timed_run(OVERHEAD_JOB, tmp)
        many = timed_run(evaluated, tmp)
    per_eval = (many - one) / (OVERHEAD_EVALS - 1) - step - forward
    return max(one - 2 * per_eval - step - 3 * forward, 0.0), max(per_eval, 0.0)


def calibrate_device(batches: Mapping[Kernel, int], device: str | None = None) -> tuple[dict[Kernel, Rate], str, str]:
    """``calibrate`` on ``device`` (default: the GPU if any, else the CPU with the threads one job gets:
    ``OMP_NUM_THREADS``, else 1), and the fixed time per job (``job_seconds``); returns (rates, the unit of the
    hours they give, "GPU-hours" or "CPU-hours", and the device in words)."""
    keep_freed_memory()  # the job process's memory settings
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if dev.type == "cuda":
        return _with_job_seconds(calibrate(dev, batches), dev), "GPU-hours", torch.cuda.get_device_name(dev)
    threads, before = user_threads() or 1, torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        rates = _with_job_seconds(calibrate(dev, batches), dev)
    finally:
        torch.set_num_threads(before)
    return rates, "CPU-hours", f"CPU, {threads} thread{'s' * (threads > 1)} a job"


def _with_job_seconds(rates: dict[Kernel, Rate], device: torch.device) -> dict[Kernel, Rate]:
    """``rates`` with ``Rate.job_s`` and ``Rate.eval_s`` measured (``job_seconds``)."""
    job_s, eval_s = job_seconds(device) if rates else (0.0, 0.0)
    return {k: dataclasses.replace(r, job_s=job_s, eval_s=eval_s) for k, r in rates.items()}

