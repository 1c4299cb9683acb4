"""Benchmark: FNO train-step samples/s, ours against neuraloperator's FNO (default and matched configurations).

One step = forward, sum-of-squared-error loss, backward, Adam, as ``harness.train.loop`` takes it. All models
run in the same process on the same batch and take turns round by round; figures are medians over rounds.

- ``ours``: ``harness.models.fno.FNO(width, modes)``, keeping a 2 modes x modes block of rfft2 coefficients
  (rows -modes..modes-1, columns 0..modes-1) with two (width, width) complex weights per mode.
- ``no-default``: neuraloperator's ``FNO(n_modes=(2m, 2m - 1), hidden_channels=w, in_channels=7,
  out_channels=1)``: our Fourier coefficients (its n_modes counts *all* kept modes of a dimension, centred on
  0, and the rfft axis keeps n // 2 + 1: 2m rows -m..m-1 x m columns), everything else at its defaults (grid
  channels, 2-layer lifting, channel MLPs with soft-gating skips).
- ``no-matched``: the same coefficients, no grid channels, a single linear lifting, no channel MLPs, a linear
  (1x1) skip, the same 2-layer projection (width -> 2 width -> 1): the same parameter count as ours.

Every process-wide setting is shared: threads, and the allocator settings of ``harness.job.process`` that every
harness job runs with (kept small blocks, huge pages for large ones). Each model takes the fastest Adam its
parameters allow: fused where they are all real (ours), the per-tensor loop for complex ones (neuraloperator's).

    python bench/bench_fno_step.py                       # default CPU subset (minutes on 2 cores)
    python bench/bench_fno_step.py --shapes 64:32:8,128:64:16   # resolution:width:modes
    python bench/bench_fno_step.py --shapes all          # every shape of the grid below
    python bench/bench_fno_step.py --device cuda [--compile]    # bf16 autocast, FFTs in float32
    python bench/bench_fno_step.py --smoke               # one tiny shape, seconds (CI)
"""

from __future__ import annotations

import argparse
import gc
import itertools

from harness.job.process import apply_job_env, keep_freed_memory

apply_job_env()  # before torch loads, as a backend starts a job's process: torch reads it once

import torch  # noqa: E402
from _common import alternate, machine, make_step, median  # noqa: E402
from torch import nn  # noqa: E402

from harness.models.fno import FNO  # noqa: E402

WIDTHS, MODES, RESOLUTIONS = (32, 64, 128), (8, 16, 32), (64, 128)
GRID = [(r, w, m) for r, w, m in itertools.product(RESOLUTIONS, WIDTHS, MODES) if 2 * m <= r]
# What 2 shared CPU cores get through in minutes: neuraloperator's complex einsum runs at ~1 GFLOP/s on CPU,
# so its widest / most-modes shapes take minutes per step (run them with --shapes all on a quiet machine).
CPU_SUBSET = [(64, 32, 8), (64, 32, 16), (64, 32, 32), (64, 64, 8), (64, 64, 16), (64, 128, 8), (128, 32, 8),
              (128, 32, 16)]
SMOKE = [(16, 8, 4)]


def neuralop_models(width: int, modes: int) -> dict[str, nn.Module] | None:
    """neuraloperator's default and matched FNOs for (width, modes), or None when it is not installed."""
    try:
        from neuralop.models import FNO as NoFNO
    except ImportError:
        return None
    n_modes = (2 * modes, 2 * modes - 1)  # rows: 2m centred on 0; rfft axis: (2m - 1) // 2 + 1 = m
    default = NoFNO(n_modes=n_modes, hidden_channels=width, in_channels=7, out_channels=1)
    matched = NoFNO(
        n_modes=n_modes,
        hidden_channels=width,
        in_channels=7,
        out_channels=1,
        lifting_channel_ratio=0,  # 0 -> one linear layer, as our 1x1 lifting conv
        projection_channel_ratio=2,  # width -> 2 width -> out, as our head
        positional_embedding=None,
        use_channel_mlp=False,
        fno_skip="linear",  # a 1x1 conv, as our pointwise path
    )
    return {"no-default": default, "no-matched": matched}


def parse_shapes(text: str) -> list[tuple[int, int, int]]:
    """``cpu`` | ``all`` | comma-separated ``resolution:width:modes`` triples."""
    if text == "all":
        return list(GRID)
    if text == "cpu":
        return list(CPU_SUBSET)
    try:
        shapes = [tuple(int(v) for v in part.split(":")) for part in text.split(",")]
    except ValueError:
        shapes = []
    if not shapes or any(len(s) != 3 for s in shapes):
        raise SystemExit(f"--shapes must be cpu, all or resolution:width:modes[,...], but got {text!r}")
    return shapes  # type: ignore[return-value]


def bench_shape(
    res: int, width: int, modes: int, batch: int, device: torch.device, args: argparse.Namespace
) -> dict[str, float]:
    """Samples/s of each model at one shape (median over rounds)."""
    torch.manual_seed(0)
    models: dict[str, nn.Module] = {"ours": FNO(width, modes)}
    if not args.ours_only:
        models.update(neuralop_models(width, modes) or {})
    x = torch.randn(batch, 7, res, res, device=device)
    y = torch.randn(batch, 1, res, res, device=device)
    steps = {}
    for name, model in models.items():
        model.to(device)
        if args.compile:
            model = torch.compile(model)
        steps[name] = make_step(model, x, y, bf16=device.type == "cuda")
    times = alternate(steps, rounds=args.rounds, calls=args.calls, warmup=args.warmup, device=device)
    del steps, models
    gc.collect()
    return {name: batch / median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="one tiny shape, one round (CI)")
    parser.add_argument("--shapes", default="cpu", help="cpu | all | resolution:width:modes[,...]")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--batch-128", type=int, default=16, help="batch at 128x128 (memory and CPU time)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per shape (median reported)")
    parser.add_argument("--calls", type=int, default=1, help="train steps per model per round")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per model first (heap, FFT plans)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda")
    parser.add_argument("--compile", action="store_true", help="torch.compile every model (CUDA mostly)")
    parser.add_argument("--ours-only", action="store_true", help="skip neuraloperator")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    keep_freed_memory()
    device = torch.device(args.device)
    shapes = SMOKE if args.smoke else parse_shapes(args.shapes)
    if args.smoke:
        args.rounds, args.warmup, args.batch = 1, 1, 4
    try:
        import neuralop  # noqa: F401
    except ImportError:
        if not args.ours_only:
            print("neuraloperator is not installed (pip install -e '.[bench]'): measuring ours alone")
        args.ours_only = True

    print(f"FNO train step (forward, backward, Adam) on {machine(device)}")
    print(f"{'shape':>16} {'batch':>5} {'ours':>9} {'no-default':>10} {'no-matched':>10} "
          f"{'vs default':>10} {'vs matched':>10}   (samples/s)")
    ratios: list[tuple[float, float]] = []
    for res, width, modes in shapes:
        if 2 * modes > res:
            print(f"{res}x{res} w{width} m{modes}: skipped, modes do not fit the grid")
            continue
        batch = args.batch if res < 128 or args.smoke else args.batch_128
        rate = bench_shape(res, width, modes, batch, device, args)
        shape = f"{res}x{res} w{width} m{modes}"
        if args.ours_only:
            print(f"{shape:>16} {batch:5d} {rate['ours']:9.1f}", flush=True)
            continue
        vs_default, vs_matched = rate["ours"] / rate["no-default"], rate["ours"] / rate["no-matched"]
        ratios.append((vs_default, vs_matched))
        print(f"{shape:>16} {batch:5d} {rate['ours']:9.1f} {rate['no-default']:10.1f} {rate['no-matched']:10.1f} "
              f"{vs_default:9.2f}x {vs_matched:9.2f}x", flush=True)
    if ratios:
        print(f"lowest ratio: {min(r[0] for r in ratios):.2f}x vs default (target 2x), "
              f"{min(r[1] for r in ratios):.2f}x vs matched (target 1.2x)")


if __name__ == "__main__":
    main()
