"""Seconds per train step of the jobs' own step (``harness.train.loop.train_step``: fused Adam, the job-process
settings), per model shape (``harness.models.Shape``: family, sizes, grid), for the sweep estimate
(``harness.sweep.estimate``)."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable

import torch

from harness.job import TrainConfig
from harness.job.process import keep_freed_memory
from harness.models import TRAIN_PASSES, Shape, SizeError, family
from harness.models.build import build_model
from harness.train.loop import make_optimizer, train_step

# Calibration: time a shape only if one step of the calibration batch costs at most this many FLOPs (about a
# second on a 2-core CPU); bigger shapes use the global ratio fitted on the ones timed. The batch is large
# enough that per-step overheads (Python, Adam's per-tensor work) weigh about as much as in the real jobs.
MAX_STEP_FLOPS = {"cpu": 1e10, "cuda": 2e13}
CALIBRATION_BATCH = {"cpu": 16, "cuda": 64}
SMALLEST = Shape("fno", (("width", 8), ("modes", 2)), 8)  # timed when no shape asked for is valid


def time_step(shape: Shape, batch: int, device: torch.device | str, steps: int = 1) -> float:
    """Seconds of one ``train_step`` (forward, sum of squared error, backward, the jobs' fused Adam) at ``shape``,
    in this process with the job-process memory settings: best of ``steps`` after one warm-up step."""
    keep_freed_memory()
    res = shape.resolution
    device = torch.device(device)
    model = build_model(shape.arch, dict(shape.sizes), in_channels=7, out_channels=1, resolution=res).to(device)
    optimizer = make_optimizer(model, TrainConfig())
    x = torch.randn(batch, 7, res, res, device=device)
    y = torch.randn(batch, 1, res, res, device=device)
    best = math.inf
    for i in range(steps + 1):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        train_step(model, optimizer, x, y)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i:  # the first step warms up allocations (and an FNO's FFT plans)
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
    shapes = sorted(set(shapes), key=lambda s: s.flops_per_sample())
    if not shapes:
        return {}
    measured: dict[Shape, tuple[float, float]] = {}  # shape -> (seconds, FLOPs) of one step
    for i, shape in enumerate(shapes):
        step_flops = TRAIN_PASSES * shape.flops_per_sample() * batch
        if i and step_flops > MAX_STEP_FLOPS[kind]:
            continue
        try:
            family(shape.arch).check_grid(dict(shape.sizes), shape.resolution)
        except SizeError:
            continue  # expand refuses such jobs; a direct caller's invalid shape is not timed
        measured[shape] = (time_step(shape, batch, device, steps), step_flops)
    if not measured:  # every shape is invalid: fall back on the smallest valid FNO there is
        step_flops = TRAIN_PASSES * SMALLEST.flops_per_sample() * batch
        measured[SMALLEST] = (time_step(SMALLEST, batch, device, steps), step_flops)
    overall = sum(t for t, _ in measured.values()) / sum(f for _, f in measured.values())
    return {s: measured[s][0] / measured[s][1] if s in measured else overall for s in shapes}


def calibrate_device(shapes: Iterable[Shape], device: str | None = None) -> tuple[dict[Shape, float], str, str]:
    """``calibrate`` on ``device`` (default: the GPU if any, else the CPU); returns (rates, the unit of the hours
    it gives, "GPU-hours" or "CPU-hours", and the device in words)."""
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    rates = calibrate(dev, shapes)
    if dev.type == "cuda":
        return rates, "GPU-hours", torch.cuda.get_device_name(dev)
    return rates, "CPU-hours", f"CPU, {torch.get_num_threads()} threads"
