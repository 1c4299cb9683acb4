"""Benchmark: training on a streamed training set (harness.train.stream) against the resident one, on the CPU.

A Poisson training set is generated into a temporary cache; its resident tensors are 4x the memory budget the
streamed run is given. Each mode runs ``train`` for a fixed number of steps in its own child process, which
reports samples/s and its peak resident memory (``ru_maxrss``): ``baseline`` trains on one resident batch (torch,
the model, Adam, one batch's activations), ``resident`` on the whole set in memory, ``streamed`` reading batches
from the cache file. The modes take turns round by round; figures are medians over rounds.

    python bench/bench_stream.py            # 64x64, 2048 samples (~230 MiB resident), width 16, 40 steps
    python bench/bench_stream.py --smoke    # seconds, for CI
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time

MODES = ("baseline", "resident", "streamed")
MIB = 1 << 20


def child(mode: str, path: str, args: argparse.Namespace) -> dict[str, float]:
    """Train ``args.steps`` steps in ``mode`` in this process; samples/s and peak RSS (MiB)."""
    import torch

    from harness.job import TrainConfig
    from harness.models.fno import FNO
    from harness.pde.cache import load
    from harness.train.loop import seed_everything, train
    from harness.train.normalise import make_inputs, make_targets
    from harness.train.stream import StreamedSplit

    torch.set_num_threads(args.threads)
    split = StreamedSplit.open(path)
    stats = split.stats
    if mode == "streamed":
        xy = split.tensors(stats)
    elif mode == "baseline":
        x, y = split.tensors(stats)
        xy = (x[torch.arange(args.batch)], y[torch.arange(args.batch)])
    else:  # as a job's resident path does it
        data = load(path)
        xy = (make_inputs(data.source, data.coef_common, stats), make_targets(data.solution))
        del data
    x_val, y_val = split.tensors(stats)
    first = torch.arange(4)
    val = (x_val[first], y_val[first])
    cfg = TrainConfig(steps=args.steps, batch_size=args.batch, eval_every=args.steps, checkpoint_every_s=1e9)
    seed_everything(0)
    model = FNO(args.width, args.modes)
    with tempfile.TemporaryDirectory() as workdir:
        start = time.perf_counter()
        train(model, xy, val, cfg, seed=0, device="cpu", workdir=workdir)
        seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MIB
    return {"samples_s": args.steps * args.batch / seconds, "peak_mib": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    for name, default in (("n", 2048), ("resolution", 64), ("width", 16), ("modes", 8), ("batch", 32),
                          ("steps", 40), ("threads", 2)):
        parser.add_argument(f"--{name}", type=int, default=default)
    args = parser.parse_args()
    if args.smoke:
        args.n, args.resolution, args.width, args.modes, args.steps, args.rounds = 64, 16, 4, 4, 4, 1
    if args.child:
        print(json.dumps(child(*args.child, args)))
        return

    from harness.pde.cache import load_split, split_path
    from harness.train.stream import StreamedSplit

    with tempfile.TemporaryDirectory() as cache:
        load_split("poisson", "train", args.n, resolution=args.resolution, seed=0, cache_dir=cache)
        path = split_path("poisson", "train", args.n, resolution=args.resolution, seed=0, cache_dir=cache)
        size = StreamedSplit.open(path).resident_bytes
        figures: dict[str, list[dict[str, float]]] = {m: [] for m in MODES}
        passed = [f"--{k}={getattr(args, k)}" for k in ("n", "resolution", "width", "modes", "batch", "steps",
                                                          "threads")]
        for _ in range(args.rounds):
            for mode in MODES:
                out = subprocess.run([sys.executable, __file__, "--child", mode, str(path), *passed],
                                     capture_output=True, text=True, check=True).stdout
                figures[mode].append(json.loads(out.splitlines()[-1]))
    med = {m: {k: statistics.median(f[k] for f in figures[m]) for k in ("samples_s", "peak_mib")} for m in MODES}
    budget = size / 4 / MIB
    print(f"{args.n} samples at {args.resolution}x{args.resolution}: resident tensors {size / MIB:.1f} MiB, "
          f"budget {budget:.1f} MiB (the set is 4x it); FNO width {args.width}, modes {args.modes}, batch "
          f"{args.batch}, {args.steps} steps, {args.threads} threads, median of {args.rounds} round(s)")
    for mode in MODES:
        print(f"  {mode:<9} {med[mode]['samples_s']:8.1f} samples/s   peak {med[mode]['peak_mib']:7.1f} MiB   "
              f"over baseline {med[mode]['peak_mib'] - med['baseline']['peak_mib']:7.1f} MiB")
    print(f"streamed / resident samples/s: {med['streamed']['samples_s'] / med['resident']['samples_s']:.2f}; "
          f"streamed peak over baseline {med['streamed']['peak_mib'] - med['baseline']['peak_mib']:.1f} MiB "
          f"vs budget {budget:.1f} MiB")


if __name__ == "__main__":
    main()
