"""What a sweep will cost before it runs: FLOPs per stage from the FNO's own size function, hours from a calibration.

The cost model (``estimate``, pure): a job of shape (width, modes, resolution) costs f = ``flops_per_sample``
per sample and forward pass, and

    training job   f * (3 * samples trained on    train steps: forward + backward (~2 forwards)
                        + n_val * evaluations     validation passes (``TrainConfig.budget``)
                        + n_test)                 the final test pass
    zero-shot job  f * (n_val + n_test)           evaluation only

Samples trained on are the step budget's (``steps`` or ``epochs``, at least ``min_steps``): with ``patience`` a
job may stop sooner, so training hours are an upper bound. Hours = FLOPs x seconds per FLOP, which
``calibrate`` measures with a few real train steps per shape.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from harness.config import TrainConfig
from harness.errors import HarnessError
from harness.models.fno import FNO, check_modes, flops_per_sample
from harness.train.loop import sum_squared_error

Shape = tuple[int, int, int]  # (width, modes, resolution)
STAGES = ("pretrain", "finetune", "scratch", "zeroshot")
TRAIN_PASSES = 3  # forward + backward, counted in forward passes
# Calibration: time a shape only if one step of the calibration batch costs at most this many FLOPs (about a
# second on a 2-core CPU); bigger shapes use the global ratio fitted on the ones timed. The batch is large
# enough that per-step overheads (Python, Adam's per-tensor work) weigh about as much as in the real jobs.
MAX_STEP_FLOPS = {"cpu": 1e10, "cuda": 2e13}
CALIBRATION_BATCH = {"cpu": 16, "cuda": 64}


@dataclass(frozen=True)
class StageCost:
    """One row of the estimate: a stage (or "total") with its jobs, samples trained on, FLOPs and hours."""

    stage: str
    jobs: int
    train_samples: int  # samples trained on, over all steps (0 for zero-shot)
    flops: float
    hours: float


def job_shape(job: dict[str, Any]) -> Shape:
    """The (width, modes, resolution) a job's model runs at."""
    cfg = job["config"]
    return cfg["model"]["width"], cfg["model"]["modes"], cfg["resolution"]


def job_passes(job: dict[str, Any]) -> tuple[int, int]:
    """(training samples, forward-pass equivalents over samples) of one job, as in the module docstring."""
    cfg, stage = job["config"], job["stage"]
    part = cfg["pretrain"] if stage == "pretrain" else cfg["downstream"]
    if stage == "zeroshot":
        return 0, part["n_val"] + part["n_test"]
    n = part["n_train"]
    budget = TrainConfig.from_dict(cfg["pretrain"]["train"] if stage == "pretrain" else cfg["train"]).budget(n)
    epochs, steps = divmod(budget.total_steps, budget.steps_per_epoch)
    samples = epochs * n + min(steps * budget.batch_size, n)
    return samples, TRAIN_PASSES * samples + part["n_val"] * budget.evaluations + part["n_test"]


def _rate(seconds_per_flop: float | Mapping[Shape, float], shape: Shape) -> float:
    """Seconds per FLOP for one shape: a single global ratio, or the shape's own (else the median of all)."""
    if isinstance(seconds_per_flop, Mapping):
        if shape in seconds_per_flop:
            return seconds_per_flop[shape]
        return statistics.median(seconds_per_flop.values())
    return seconds_per_flop


def estimate(
    jobs: Iterable[dict[str, Any]], seconds_per_flop: float | Mapping[Shape, float]
) -> dict[str, StageCost]:
    """Cost per stage (in ``STAGES`` order, stages without jobs left out) and a final "total" row.

    ``seconds_per_flop`` is one ratio for every shape, or a mapping (width, modes, resolution) -> ratio as
    ``calibrate`` returns; a shape missing from the mapping gets the median of its ratios.
    """
    rows: dict[str, dict[str, float]] = {}
    for job in jobs:
        shape = job_shape(job)
        train_samples, passes = job_passes(job)
        flops = flops_per_sample(shape[0], shape[1], shape[2]) * passes
        row = rows.setdefault(job["stage"], {"jobs": 0, "train_samples": 0, "flops": 0.0, "seconds": 0.0})
        row["jobs"] += 1
        row["train_samples"] += train_samples
        row["flops"] += flops
        row["seconds"] += flops * _rate(seconds_per_flop, shape)
    table = {
        stage: StageCost(stage, int(r["jobs"]), int(r["train_samples"]), r["flops"], r["seconds"] / 3600)
        for stage in STAGES
        if (r := rows.get(stage))
    }
    table["total"] = StageCost(
        "total",
        sum(c.jobs for c in table.values()),
        sum(c.train_samples for c in table.values()),
        sum(c.flops for c in table.values()),
        sum(c.hours for c in table.values()),
    )
    return table


def time_step(shape: Shape, batch: int, device: torch.device | str, steps: int = 1) -> float:
    """Seconds of one train step (forward, sum of squared error, backward, Adam) at ``shape``: best of ``steps``
    after one warm-up step."""
    width, modes, res = shape
    device = torch.device(device)
    model = FNO(width, modes).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(batch, 7, res, res, device=device)
    y = torch.randn(batch, 1, res, res, device=device)
    best = math.inf
    for i in range(steps + 1):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        loss = sum_squared_error(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i:  # the first step warms up allocations and FFT plans
            best = min(best, time.perf_counter() - start)
    return best


def calibrate(device: torch.device | str, shapes: Iterable[Shape], *, steps: int = 1) -> dict[Shape, float]:
    """Seconds per FLOP for every shape, from real train steps on ``device`` (a fixed batch, warm-up + ``steps``).

    Shapes whose step fits ``MAX_STEP_FLOPS`` are timed and get their own ratio; the cheapest shape is always
    timed; the others get the global ratio (total seconds / total FLOPs of the timed ones), which leans high for
    them (bigger shapes use the hardware better). Uses the calling process's threads.
    """
    device = torch.device(device)
    kind = "cuda" if device.type == "cuda" else "cpu"
    batch = CALIBRATION_BATCH[kind]
    shapes = sorted(set(shapes), key=lambda s: flops_per_sample(*s))
    if not shapes:
        return {}
    measured: dict[Shape, tuple[float, float]] = {}  # shape -> (seconds, FLOPs) of one step
    for i, shape in enumerate(shapes):
        step_flops = TRAIN_PASSES * flops_per_sample(*shape) * batch
        if i and step_flops > MAX_STEP_FLOPS[kind]:
            continue
        try:
            check_modes(shape[1], shape[2], shape[2])
        except HarnessError:
            continue  # the job itself will fail with this message; it costs nothing to time here
        measured[shape] = (time_step(shape, batch, device, steps), step_flops)
    if not measured:  # every shape is invalid: fall back on the smallest valid FNO there is
        step_flops = TRAIN_PASSES * flops_per_sample(8, 2, 8) * batch
        measured[(8, 2, 8)] = (time_step((8, 2, 8), batch, device, steps), step_flops)
    overall = sum(t for t, _ in measured.values()) / sum(f for _, f in measured.values())
    return {s: measured[s][0] / measured[s][1] if s in measured else overall for s in shapes}


def describe_estimate(jobs: list[dict[str, Any]], *, device: torch.device | str | None = None) -> str:
    """The printable estimate of a sweep: a calibration on ``device`` (default: the GPU if any, else the CPU),
    then one line per stage (jobs, train-samples, FLOPs, hours) and the total."""
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    shapes = {job_shape(j) for j in jobs}
    start = time.perf_counter()
    rates = calibrate(device, shapes)
    table = estimate(jobs, rates)
    if device.type == "cuda":
        unit, where = "GPU-hours", torch.cuda.get_device_name(device)
    else:
        unit, where = "CPU-hours", f"CPU, {torch.get_num_threads()} threads"
    lines = [f"{'stage':<10} {'jobs':>6} {'train-samples':>14} {'FLOPs':>10} {unit:>10}"]
    for row in table.values():
        lines.append(f"{row.stage:<10} {row.jobs:6d} {row.train_samples:14.3g} {row.flops:10.3g} {row.hours:10.3g}")
    lines.append(
        f"(calibrated in {time.perf_counter() - start:.0f}s on {where}, {len(shapes)} shape(s); one job at a time "
        "per device; with patience a job may stop sooner, so training hours are an upper bound)"
    )
    return "\n".join(lines)
