"""What passes of the jobs' models cost on a device, for the sweep estimate (``harness.sweep.estimate``): per
kernel (``Kernel``: family, sizes, grid, channels) the fixed seconds of a train step and of a forward pass and the
seconds per FLOP of each (``Rate``), from the jobs' own ``harness.train.loop.train_step`` (fused Adam) and forward
pass without gradients, timed at two batch sizes in this process, with its threads and memory settings
(``harness.job.calibration.calibrate_device`` applies a job process's and adds the fixed time per job).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping

import torch

from harness.job import TrainConfig
from harness.models import TRAIN_PASSES, Kernel, Shape, SizeError, family
from harness.models.build import build_model
from harness.train import Rate
from harness.train.loop import make_optimizer, train_step

# Time a kernel only if one train step at its batch costs at most this many FLOPs (about a second on a 2-core
# CPU); bigger kernels get the fixed times and per-FLOP rates of the ones timed.
MAX_STEP_FLOPS = {"cpu": 1e10, "cuda": 2e13}
TIMED_SECONDS = 1.0  # the timing rounds of a kernel fill about this long (at least MIN_REPEATS, at most MAX_REPEATS)
MIN_REPEATS, MAX_REPEATS = 5, 40
SMALL_BATCH_DIVISOR = 8  # the second batch size timed: the job's batch / 8 (at least 1)
SMALLEST = Kernel(Shape("fno", (("width", 8), ("modes", 2)), 8))  # timed when no kernel asked for is valid


def time_passes(kernel: Kernel, batches: tuple[int, ...], device: torch.device | str) -> list[tuple[float, float]]:
    """(seconds of one ``train_step``, seconds of one forward pass without gradients) of ``kernel``'s model at
    each of ``batches``, in this process with its memory settings and threads: medians over rounds that time
    every pass and batch in turn (so that a busy moment weighs on all alike), after a warm-up round (allocations,
    an FNO's FFT plans); rounds fill about ``TIMED_SECONDS``."""
    res, device = kernel.shape.resolution, torch.device(device)
    model = build_model(kernel.shape.arch, dict(kernel.shape.sizes), in_channels=kernel.in_channels,
                        out_channels=kernel.out_channels, resolution=res).to(device)
    optimizer = make_optimizer(model, TrainConfig())
    data = [(torch.randn(b, kernel.in_channels, res, res, device=device),
             torch.randn(b, kernel.out_channels, res, res, device=device)) for b in batches]

    def timed(call: Callable[..., object], *args: torch.Tensor) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        call(*args)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - start

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        train_step(model, optimizer, x, y)

    def forward(x: torch.Tensor) -> None:
        model.eval()
        with torch.no_grad():
            model(x)
        model.train()

    def one_round() -> list[float]:
        return [t for x, y in data for t in (timed(step, x, y), timed(forward, x))]

    first = sum(one_round())
    rounds = [one_round() for _ in range(min(MAX_REPEATS, max(MIN_REPEATS, int(TIMED_SECONDS / max(first, 1e-6)))))]
    medians = [statistics.median(column) for column in zip(*rounds, strict=True)]
    return [(medians[2 * i], medians[2 * i + 1]) for i in range(len(batches))]


def _fit(kernel: Kernel, batch: int, device: torch.device) -> Rate:
    """The kernel's ``Rate`` from its passes timed at ``batch`` and at a smaller batch: a line through the two
    (fixed time + per-sample time), the per-sample slope kept >= 0 and the time at ``batch`` reproduced."""
    small = max(1, batch // SMALL_BATCH_DIVISOR)
    big = max(batch, small + 1)
    t_small, t_big = time_passes(kernel, (small, big), device)
    flops = kernel.flops_per_sample()
    fitted = []
    for passes, lo, hi in ((TRAIN_PASSES, t_small[0], t_big[0]), (1, t_small[1], t_big[1])):
        per_sample = max(hi - lo, 0.0) / (big - small)
        fitted += [max(hi - big * per_sample, 0.0), per_sample / (passes * flops)]
    return Rate(*fitted)


def calibrate(device: torch.device | str, batches: Mapping[Kernel, int]) -> dict[Kernel, Rate]:
    """A ``Rate`` for every kernel of ``batches`` (kernel -> the batch its jobs train at), from real passes on
    ``device`` in this process, with its threads.

    Kernels whose train step fits ``MAX_STEP_FLOPS`` are timed; the cheapest is always timed; the others get the
    median fixed times of the timed ones and their per-FLOP rates weighted by FLOPs, which lean high for them
    (bigger kernels use the hardware better).
    """
    device = torch.device(device)
    limit = MAX_STEP_FLOPS["cuda" if device.type == "cuda" else "cpu"]
    kernels = sorted(batches, key=lambda k: k.flops_per_sample() * batches[k])
    measured: dict[Kernel, Rate] = {}
    for i, kernel in enumerate(kernels):
        if i and TRAIN_PASSES * kernel.flops_per_sample() * batches[kernel] > limit:
            continue
        try:
            family(kernel.shape.arch).check_grid(dict(kernel.shape.sizes), kernel.shape.resolution)
        except SizeError:
            continue  # expand refuses such jobs; a direct caller's invalid shape is not timed
        measured[kernel] = _fit(kernel, batches[kernel], device)
    if not measured and kernels:  # every kernel is invalid: fall back on the smallest valid FNO there is
        measured[SMALLEST] = _fit(SMALLEST, 16, device)
    if not measured:
        return {}
    weights = {k: k.flops_per_sample() for k in measured}
    overall = Rate(
        statistics.median(r.step_s for r in measured.values()),
        sum(r.train_s_per_flop * weights[k] for k, r in measured.items()) / sum(weights.values()),
        statistics.median(r.pass_s for r in measured.values()),
        sum(r.forward_s_per_flop * weights[k] for k, r in measured.items()) / sum(weights.values()),
    )
    return {k: measured.get(k, overall) for k in kernels}
