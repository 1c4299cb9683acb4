"""Timing helpers shared by the benchmarks: the machine in one line, one train step, alternating timed runs.

Benchmarks compare implementations in the same process and alternate them round by round, so that a
neighbour's load hits every contender alike; figures are medians over rounds.
"""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from harness.train.objective import sum_squared_error


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (the platform's processor string elsewhere)."""
    with contextlib.suppress(OSError):
        for line in open("/proc/cpuinfo"):  # noqa: SIM115 - read once, closed on exit
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def machine(device: torch.device) -> str:
    """One line naming what the figures were measured on."""
    if device.type == "cuda":
        where = torch.cuda.get_device_name(device)
    else:
        where = f"{cpu_model()}, {torch.get_num_threads()} threads of {os.cpu_count()} cores"
    return f"{where}; torch {torch.__version__}"


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, bf16: bool = False) -> Callable[[], None]:
    """One train step as the harness takes it: forward (bf16 autocast if asked), sum of squared error, backward,
    Adam (fused, as in ``harness.train.loop``, where the parameters are all real; it takes no complex ones).
    Returns a closure; the optimiser lives inside it."""
    fused = not any(p.is_complex() for p in model.parameters())
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=fused)
    device_type = x.device.type

    def step() -> None:
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=bf16):
            pred = model(x)
        loss = sum_squared_error(pred.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def alternate(
    fns: dict[str, Callable[[], object]],
    *,
    rounds: int,
    calls: int = 1,
    warmup: int = 1,
    device: torch.device | None = None,
) -> dict[str, list[float]]:
    """Seconds per call of each function, ``calls`` calls per round, the functions taking turns each round.

    ``warmup`` untimed calls of each first (allocations, FFT plans, compilation). Returns name -> one time
    per round; take the median.
    """
    device = device or torch.device("cpu")
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    sync(device)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for r in range(rounds):
        # Rotate the order every round so that no contender always runs first (or right after another).
        names = list(fns)
        names = names[r % len(names) :] + names[: r % len(names)]
        for name in names:
            start = time.perf_counter()
            for _ in range(calls):
                fns[name]()
            sync(device)
            times[name].append((time.perf_counter() - start) / calls)
    return times


def median(values: list[float]) -> float:
    """The median (a shorthand kept here so every benchmark reports the same statistic)."""
    return statistics.median(values)
