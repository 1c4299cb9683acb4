"""Benchmark: fused training (``harness.train.fused``) against the same K jobs one after the other.

K runs of the reference study's shape (FNO at 32x32, 7 channels in, 1 out, batch 16; width 4 and 16 at 8 modes:
the study's 17K and 264K parameters), each with its own seed, learning rate and data, are built with the
harness's own ``start``; "one by one" takes each run's steps with ``advance`` (what ``train`` does), "fused" takes
the group's steps with one batched forward and backward (the step ``train_group`` takes). Both run in this
process, taking turns round by round; the figure is samples/s (K x steps x batch / seconds, medians over rounds)
and the ratio fused / one by one. On CUDA also the GPU's utilisation after each (``torch.cuda.utilization``,
when the NVML bindings are installed) and K separate processes, each training one job at once (the local
backend's ``--jobs-per-gpu K``), timed from their start to the last one's end.

    python bench/bench_fused.py                       # K = 1, 4, 16 (and 64 on CUDA), both sizes
    python bench/bench_fused.py --device cuda --ks 1,4,16,64
    python bench/bench_fused.py --smoke               # K = 1, 4 at width 4, 16x16, seconds (CI)
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import tempfile
import time
from pathlib import Path

from harness.job.process import apply_job_env

apply_job_env()  # before torch loads, as a backend starts a job's process: torch reads it once

import torch  # noqa: E402
from _common import alternate, machine, median, sync  # noqa: E402

from harness.job import TrainConfig  # noqa: E402
from harness.models.fno import FNO  # noqa: E402
from harness.train.fused import step_group  # noqa: E402
from harness.train.loop import advance, seed_everything, start  # noqa: E402
from harness.train.state import Run  # noqa: E402

BATCH, N_TRAIN, IN_CHANNELS = 16, 256, 7


def runs(k: int, width: int, modes: int, resolution: int, device: torch.device, workdir: Path) -> list[Run]:
    """K runs of one shape: their own seeds, learning rates and training sets."""
    out = []
    for i in range(k):
        seed_everything(i)
        g = torch.Generator().manual_seed(i)
        data = (torch.randn(N_TRAIN, IN_CHANNELS, resolution, resolution, generator=g),
                torch.randn(N_TRAIN, 1, resolution, resolution, generator=g))
        cfg = TrainConfig(steps=10**6, lr=1e-3 * (1 + i % 4), batch_size=BATCH)
        out.append(start(FNO(width=width, modes=modes, in_channels=IN_CHANNELS), data, data, cfg, seed=i,
                         device=device, workdir=workdir / f"{k}-{width}-{i}"))
    return out


def utilisation(device: torch.device) -> str:
    """The GPU's utilisation now, percent (empty off CUDA or without NVML)."""
    if device.type != "cuda":
        return ""
    with contextlib.suppress(Exception):
        return f"{torch.cuda.utilization(device)}%"
    return "n/a"


def _one_process(width: int, modes: int, resolution: int, steps: int, ready, go) -> None:
    """One job alone in its own process (``separate``): set up, wait for the others, then ``steps`` steps."""
    device = torch.device("cuda")
    with tempfile.TemporaryDirectory() as tmp:
        (run,) = runs(1, width, modes, resolution, device, Path(tmp))
        advance(run.state, run.setup, *run.train_xy)
        sync(device)
        ready.release()
        go.wait()
        for _ in range(steps):
            advance(run.state, run.setup, *run.train_xy)
        sync(device)


def separate(k: int, width: int, modes: int, resolution: int, steps: int) -> float:
    """Samples/s of K processes training one job each at once (CUDA), from the go signal to the last one's end."""
    ctx = mp.get_context("spawn")
    ready, go = ctx.Semaphore(0), ctx.Event()
    procs = [ctx.Process(target=_one_process, args=(width, modes, resolution, steps, ready, go)) for _ in range(k)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.acquire()
    t0 = time.perf_counter()
    go.set()
    for p in procs:
        p.join()
    return k * steps * BATCH / (time.perf_counter() - t0)


def bench(k: int, width: int, modes: int, resolution: int, device: torch.device, rounds: int, steps: int,
          processes: bool) -> str:
    """One line: K, parameters, samples/s one by one and fused, the ratio (and utilisation, processes on CUDA)."""
    with tempfile.TemporaryDirectory() as tmp:
        group = runs(k, width, modes, resolution, device, Path(tmp))
        busy: dict[str, str] = {}

        def one_by_one() -> None:
            for run in group:
                advance(run.state, run.setup, *run.train_xy)

        def fused() -> None:
            step_group(group)

        def noted(name, fn):
            def call() -> None:
                fn()
                busy[name] = utilisation(device)
            return call

        times = alternate({"alone": noted("alone", one_by_one), "fused": noted("fused", fused)}, rounds=rounds,
                          calls=steps, device=device)
    alone, fuse = (k * BATCH / median(times[name]) for name in ("alone", "fused"))
    line = (f"K={k:3d}  {group[0].setup.model.num_params():8d} params  one by one {alone:9.1f}  fused {fuse:9.1f} "
            f"samples/s  fused/one-by-one {fuse / alone:5.2f}x")
    if device.type == "cuda":
        line += f"  util {busy['alone']} / {busy['fused']}"
        if processes:
            line += f"  {k} processes {separate(k, width, modes, resolution, steps * rounds):9.1f} samples/s"
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--ks", default="", help="group sizes (default 1,4,16, and 64 on CUDA)")
    parser.add_argument("--widths", default="4,16", help="FNO widths (8 modes)")
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=5, help="steps per round")
    parser.add_argument("--no-processes", action="store_true", help="skip the K separate processes (CUDA)")
    parser.add_argument("--smoke", action="store_true", help="K = 1, 4 at width 4, 16x16, one round (CI)")
    args = parser.parse_args()
    device = torch.device(args.device)
    ks = [int(k) for k in args.ks.split(",")] if args.ks else [1, 4, 16] + ([64] if device.type == "cuda" else [])
    widths, modes, resolution, rounds, steps = [int(w) for w in args.widths.split(",")], 8, args.resolution, \
        args.rounds, args.steps
    if args.smoke:
        ks, widths, modes, resolution, rounds, steps = [1, 4], [4], 4, 16, 1, 1
    print(f"fused training vs one by one, {resolution}x{resolution}, batch {BATCH}; {machine(device)}")
    for width in widths:
        for k in ks:
            print(bench(k, width, modes, resolution, device, rounds, steps, not args.no_processes), flush=True)


if __name__ == "__main__":
    main()
