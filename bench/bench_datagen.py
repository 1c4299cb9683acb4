"""Benchmark: PDE data generation, vectorised generator vs a per-sample NumPy loop (the original study's style).

The baseline builds each source from 144 full-grid Gaussians and solves with a 2D FFT, one sample at a time.
Both run in the same process, so the ratio is robust to the machine's load; best of ``--repeats`` runs.

    python bench/bench_datagen.py            # 128x128, a few seconds per measurement
    python bench/bench_datagen.py --smoke    # a couple of seconds in all, for CI
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from harness.pde import generate
from harness.pde.sources import LATTICE, SIGMA, SPACING, VF_LEVELS


def loop_poisson(n: int, resolution: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample reference in the original study's style (its ``utils/gen_data_poisson.py``): per sample,
    draw each Gaussian's switch and amplitude in a Python loop, build the 144 full-grid squared-distance
    fields, sum their exponentials, then solve -div(K grad u) = f with a complex 2D FFT."""
    rng = np.random.default_rng(seed)
    x = np.arange(resolution) / resolution
    xx, yy = np.meshgrid(x, x, indexing="ij")
    line = 0.5 + (np.arange(LATTICE) - (LATTICE - 1) / 2) * SPACING
    centres = [(cx, cy) for cx in line for cy in line]
    sources, solutions = [], []
    for i in range(n):
        vf = VF_LEVELS[i % len(VF_LEVELS)]
        p = np.zeros(len(centres))
        for j in range(len(centres)):
            if rng.random() > vf:
                p[j] = rng.uniform(1e-3, 1.0)
        if not p.any():
            p[rng.integers(len(p))] = rng.uniform(1e-3, 1.0)
        ratios = [((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * SIGMA**2) for cx, cy in centres]
        f = 0 * ratios[0]
        for amp, ratio in zip(p, ratios, strict=True):
            f += amp * np.exp(-ratio)
        f = f / f.max()
        f -= f.mean()
        theta, e = rng.uniform(0, 2 * np.pi), rng.uniform(1, 5)
        rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
        k = 0.01 * rot.T @ np.diag([1.0, e]) @ rot
        kx = np.repeat((2j * np.pi * np.fft.fftfreq(resolution, 1 / resolution))[:, None], resolution, 1)
        ky = kx.T.copy()
        factor = -(k[0, 0] * kx**2 + k[1, 1] * ky**2 + 2 * k[0, 1] * kx * ky)
        factor = np.where(factor == 0, 0, 1 / np.where(factor == 0, 1, factor))
        u = np.real(np.fft.ifft2(factor * np.fft.fft2(f)))
        sources.append(f.astype(np.float32))
        solutions.append((u - u.mean()).astype(np.float32))
    return np.stack(sources), np.stack(solutions)


def rate(fn: Callable[[], object], n: int, repeats: int) -> float:
    """Best samples/s over ``repeats`` timed calls of ``fn`` (which makes ``n`` samples)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return n / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one repeat (CI)")
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    res = args.resolution
    n_loop, n_vec, repeats = (4, 512, 1) if args.smoke else (48, 8192, args.repeats)

    generate("poisson", 256, resolution=res)  # warm caches (FFT plans, lattice matrices)
    loop = rate(lambda: loop_poisson(n_loop, res), n_loop, repeats)
    vec = rate(lambda: generate("poisson", n_vec, resolution=res), n_vec, repeats)
    print(f"poisson {res}x{res}: per-sample loop {loop:8.1f} samples/s ({n_loop} samples)")
    print(f"poisson {res}x{res}: vectorised     {vec:8.1f} samples/s ({n_vec} samples)")
    print(f"speed-up: {vec / loop:.0f}x")
    if not args.smoke:
        for system in ("advection_diffusion", "helmholtz", "mixed"):
            r = rate(lambda s=system: generate(s, 2048, resolution=res), 2048, repeats)
            print(f"{system} {res}x{res}: vectorised {r:8.1f} samples/s (2048 samples)")


if __name__ == "__main__":
    main()
