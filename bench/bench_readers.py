"""Benchmark: memory of reading a few samples from a large data file, against reading the whole file.

Writes a tl-scaling file (the first study's layout, ``fields`` (N, 2, n, n) float32) under /tmp, then in
fresh subprocesses measures the peak resident memory (VmHWM, reset after the imports through
/proc/self/clear_refs) that ``harness.data.source.load`` adds to draw n training samples, and that a naive
whole-dataset read (``f["fields"][:]``, how the studies' loaders read) adds on a file 1/8 the size. The
loaded samples' own arrays are the floor: the ratio to them should stay near 1 whatever the file size.
Deletes its files at the end.

    python bench/bench_readers.py            # a 4 GiB file (32768 samples at 128x128), n = 512 and 2048
    python bench/bench_readers.py --smoke    # a 16 MiB file, seconds, for CI
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

MIB = 1 << 20


def write_file(path: Path, n: int, resolution: int) -> float:
    """A tl-scaling file of n samples (deterministic, cheap content), written in blocks; returns seconds."""
    start = time.perf_counter()
    block = max(1, (64 * MIB) // (2 * resolution * resolution * 4))
    with h5py.File(path, "w") as f:
        fields = f.create_dataset("fields", (n, 2, resolution, resolution), dtype="<f4")
        pattern = np.sin(np.arange(2 * resolution * resolution, dtype=np.float32)).reshape(2, resolution,
                                                                                              resolution)
        for s in range(0, n, block):
            rows = np.arange(s, min(n, s + block), dtype=np.float32)
            fields[s:s + len(rows)] = pattern[None] * (1 + rows[:, None, None, None] / n)
        f.create_dataset("tensor", data=np.tile([0.01, 0.02, 0.003], (n, 1)), dtype="<f4")
    return time.perf_counter() - start


def _status(key: str) -> int:
    """A /proc/self/status entry in bytes."""
    for line in open("/proc/self/status"):  # noqa: SIM115 - read once, closed on exit
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def child(mode: str, path: str, n: int, cache: str) -> None:
    """In a fresh process: the peak memory one read adds beyond the imports, printed as JSON."""
    import harness.data.source as source  # imported before the baseline, as a job has it
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # reset the peak (VmHWM) to the current resident size
        reset = True
    except OSError:
        reset = False
    base = _status("VmRSS")
    start = time.perf_counter()
    if mode == "load":
        samples = source.load({"path": path, "format": "tl-scaling"}, "train", n, seed=0, cache_dir=cache)
        held = samples.fields.nbytes + samples.targets.nbytes + samples.coefficients.nbytes
    else:
        with h5py.File(path, "r") as f:
            held = f["fields"][:].nbytes
    seconds = time.perf_counter() - start
    print(json.dumps({"peak": _status("VmHWM") - base, "held": held, "seconds": seconds, "reset": reset}))


def measure(mode: str, path: Path, n: int, cache: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", mode, str(path), str(n), str(cache)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a 16 MiB file (CI)")
    parser.add_argument("--child", nargs=4, metavar=("MODE", "PATH", "N", "CACHE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, path, n, cache = args.child
        child(mode, path, int(n), cache)
        return
    resolution, n_file, draws = (32, 2048, (512,)) if args.smoke else (128, 32768, (512, 2048))
    folder = Path(tempfile.mkdtemp(prefix="bench_readers_", dir="/tmp"))
    try:
        big, small = folder / "big.h5", folder / "small.h5"
        wrote = write_file(big, n_file, resolution)
        write_file(small, n_file // 8, resolution)
        size = os.path.getsize(big)
        print(f"file: {size / MIB:.0f} MiB tl-scaling, {n_file} x 2 x {resolution} x {resolution} float32, "
              f"written in {wrote:.1f} s")
        from harness.data.fingerprint import fingerprint
        from harness.data.source import check_source
        start = time.perf_counter()
        fingerprint(big, cache_dir=folder)
        first = time.perf_counter() - start
        start = time.perf_counter()
        check_source({"path": str(big), "format": "tl-scaling"}, {"train": max(draws)}, cache_dir=folder)
        print(f"fingerprint: {first * 1e3:.0f} ms first, check_source (headers, cached fingerprint) "
              f"{(time.perf_counter() - start) * 1e3:.0f} ms")
        for n in draws:
            m = measure("load", big, n, folder)
            print(f"load {n} samples: peak +{m['peak'] / MIB:.0f} MiB, samples' arrays {m['held'] / MIB:.0f} MiB "
                  f"(ratio {m['peak'] / m['held']:.2f}), {m['peak'] / size:.4f} of the file, {m['seconds']:.2f} s"
                  + ("" if m["reset"] else " (peak not reset after imports: an upper bound)"))
        m = measure("naive", small, 0, folder)
        small_size = os.path.getsize(small)
        print(f"naive whole read of a {small_size / MIB:.0f} MiB file: peak +{m['peak'] / MIB:.0f} MiB "
              f"({m['peak'] / small_size:.2f} of the file), {m['seconds']:.2f} s; at {size / MIB:.0f} MiB that is "
              f"~{m['peak'] / small_size * size / MIB:.0f} MiB")
    finally:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
