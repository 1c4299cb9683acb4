"""Benchmark: train-step samples/s and peak memory of every model family at matched parameter counts.

For each parameter target, each family's sizes are the harness's own resolution of ``model.params``
(``harness.models.Family.nearest``: its width keys scaled, the other keys at their defaults), built with
``harness.models.build.build_model`` for the steady task's channels (7 in, 1 out). One step = forward, sum of
squared errors, backward, Adam, as ``harness.train.loop`` takes it (``_common.make_step``; bf16 autocast on CUDA).
The families run in the same process on the same batch and take turns round by round; figures are medians over
rounds, and ratios are against the FNO of the same target measured in the same process.

Peak memory: on CUDA, the allocator's peak over two steps of one family alone (the others freed), less what was
allocated before its model was built (the batch): weights, gradients, Adam state, activations and the
backward's transients. On CPU there is no allocator peak to read, so the column is the harness's estimate
(``Family.train_memory``: parameters with gradients and Adam state, one batch's activations), marked ``est``.

Public implementations: neuraloperator (the ``bench`` extra) ships an FNO, timed as ``fno (neuraloperator)``
beside ours at the same width and modes, matched as in ``bench_fno_step.py``, when it is installed; it has no
U-Net, DeepONet or OFormer, so those run alone.

    python bench/bench_families.py                          # targets 1e5 and 1e6 at 64x64, batch 32
    python bench/bench_families.py --targets 1e4,1e5,1e6 --device cuda
    python bench/bench_families.py --smoke                  # one tiny target at 16x16, seconds (CI)
"""

from __future__ import annotations

import argparse
import gc

from harness.job.process import apply_job_env, keep_freed_memory

apply_job_env()  # before torch loads, as a backend starts a job's process: torch reads it once

import torch  # noqa: E402
from _common import alternate, machine, make_step, median, sync  # noqa: E402
from bench_fno_step import neuralop_models  # noqa: E402
from torch import nn  # noqa: E402

from harness.models import ARCHS, family  # noqa: E402
from harness.models.build import build_model  # noqa: E402

IN_CHANNELS, OUT_CHANNELS = 7, 1
MIB = 1 << 20


def contenders(target: float, resolution: int, with_neuralop: bool) -> dict[str, tuple[nn.Module, str]]:
    """name -> (model, its sizes as text) of every family at ``target`` parameters (and neuraloperator's FNO)."""
    io = {"resolution": resolution, "in_channels": IN_CHANNELS, "out_channels": OUT_CHANNELS}
    models = {}
    for arch in ARCHS:
        sizes = family(arch).nearest(target, **io)
        torch.manual_seed(0)
        models[arch] = (build_model(arch, sizes, **io), " ".join(f"{k}={v}" for k, v in sizes.items()))
        if arch == "fno" and with_neuralop:
            theirs = neuralop_models(sizes["width"], sizes["modes"])
            models["fno (neuraloperator)"] = (theirs["no-matched"], models[arch][1])
    return models


def peak_bytes(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    """CUDA: the allocator's peak over two train steps of ``model`` alone, less what was allocated before."""
    gc.collect()
    torch.cuda.empty_cache()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    model.to(x.device)
    step = make_step(model, x, y, bf16=True)
    step()
    step()
    sync(x.device)
    peak = torch.cuda.max_memory_allocated() - before
    model.cpu()
    del step
    return peak


def estimated_bytes(arch: str, sizes: str, resolution: int, batch: int) -> int:
    """The harness's estimate of a training step's memory (parameters with Adam state, one batch's activations)."""
    values = {k: int(v) for k, v in (item.split("=") for item in sizes.split())}
    need = family(arch).train_memory(values, resolution=resolution, batch=batch, samples=0, in_channels=IN_CHANNELS,
                                     out_channels=OUT_CHANNELS)
    return need.params + need.activations


def bench_target(target: float, resolution: int, batch: int, device: torch.device,
                 args: argparse.Namespace) -> list[tuple[str, str, int, float, int | None]]:
    """(name, sizes, parameters, samples/s, peak bytes or None) of each contender at one target."""
    models = contenders(target, resolution, not args.ours_only)
    x = torch.randn(batch, IN_CHANNELS, resolution, resolution, device=device)
    y = torch.randn(batch, OUT_CHANNELS, resolution, resolution, device=device)
    peaks = {name: peak_bytes(model, x, y) if device.type == "cuda" else None for name, (model, _) in models.items()}
    steps = {}
    for name, (model, _) in models.items():
        model.to(device)
        steps[name] = make_step(model, x, y, bf16=device.type == "cuda")
    times = alternate(steps, rounds=args.rounds, calls=args.calls, warmup=args.warmup, device=device)
    rows = []
    for name, (model, sizes) in models.items():
        params = sum(p.numel() for p in model.parameters())
        peak = peaks[name] if peaks[name] is not None else (
            estimated_bytes(name, sizes, resolution, batch) if name in ARCHS else None)
        rows.append((name, sizes, params, batch / median(times[name]), peak))
    del steps, models
    gc.collect()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="one tiny target at 16x16, batch 4, one round (CI)")
    parser.add_argument("--targets", default="1e5,1e6", help="comma-separated parameter targets")
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (median reported)")
    parser.add_argument("--calls", type=int, default=1, help="train steps per model per round")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per model first")
    parser.add_argument("--device", default="cpu", help="cpu | cuda")
    parser.add_argument("--ours-only", action="store_true", help="skip neuraloperator")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    keep_freed_memory()
    device = torch.device(args.device)
    targets = [float(t) for t in args.targets.split(",")]
    resolution, batch = args.resolution, args.batch
    if args.smoke:
        targets, resolution, batch, args.rounds, args.warmup = [1e4], 16, 4, 1, 1
    try:
        import neuralop  # noqa: F401
    except ImportError:
        if not args.ours_only:
            print("neuraloperator is not installed (pip install -e '.[bench]'): measuring ours alone")
        args.ours_only = True

    kind = "peak" if device.type == "cuda" else "est"
    print(f"Train step (forward, backward, Adam) per family at {resolution}x{resolution}, batch {batch}, "
          f"{IN_CHANNELS} in / {OUT_CHANNELS} out, on {machine(device)}")
    print(f"{'target':>7} {'family':>20} {'params':>9} {'samples/s':>10} {'vs fno':>7} {kind + ' MiB':>9} "
          f"{'vs fno':>7}  sizes")
    for target in targets:
        rows = bench_target(target, resolution, batch, device, args)
        fno = next(row for row in rows if row[0] == "fno")
        for name, sizes, params, rate, peak in rows:
            memory = f"{peak / MIB:9.1f} {peak / fno[4]:6.2f}x" if peak is not None else f"{'-':>9} {'-':>7}"
            print(f"{target:7.0e} {name:>20} {params:9,d} {rate:10.1f} {rate / fno[3]:6.2f}x {memory}  {sizes}",
                  flush=True)


if __name__ == "__main__":
    main()
