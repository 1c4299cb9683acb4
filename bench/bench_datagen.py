"""Benchmark: PDE data generation, vectorised generator vs a per-sample NumPy loop (the original study's style).

The baseline builds each source from 144 full-grid Gaussians and solves with a 2D FFT, one sample at a time.
Both run in the same process and take turns round by round (``_common.alternate``), so a neighbour's load
hits both alike; figures are medians over rounds.

    python bench/bench_datagen.py            # 128x128, a few seconds per measurement
    python bench/bench_datagen.py --smoke    # a couple of seconds in all, for CI
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from _common import alternate, machine, median

from harness.pde.steady_dataset import generate
from harness.pde.steady_sources import LATTICE, SIGMA, SPACING, VF_LEVELS


def loop_poisson(n: int, resolution: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample reference in the original study's style (its ``utils/gen_data_poisson.py``): per sample,
    draw each Gaussian's switch and amplitude in a Python loop, build the 144 full-grid squared-distance
    fields (minimum-image, as the periodic data needs), sum their exponentials, then solve -div(K grad u) = f
    with a complex 2D FFT."""
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
        ratios = [(((xx - cx + 0.5) % 1 - 0.5) ** 2 + ((yy - cy + 0.5) % 1 - 0.5) ** 2) / (2 * SIGMA**2)
                  for cx, cy in centres]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one round (CI)")
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    res = args.resolution
    n_loop, n_vec, rounds = (2, 256, 1) if args.smoke else (32, 2048, args.rounds)

    print(f"machine: {machine(torch.device('cpu'))}")
    times = alternate({"loop": lambda: loop_poisson(n_loop, res),
                       "vectorised": lambda: generate("poisson", n_vec, resolution=res)}, rounds=rounds)
    loop, vec = n_loop / median(times["loop"]), n_vec / median(times["vectorised"])
    print(f"poisson {res}x{res}: per-sample loop {loop:8.1f} samples/s ({n_loop} samples, median of {rounds})")
    print(f"poisson {res}x{res}: vectorised     {vec:8.1f} samples/s ({n_vec} samples, median of {rounds})")
    print(f"speed-up: {vec / loop:.0f}x")
    if not args.smoke:
        systems = ("advection_diffusion", "helmholtz", "mixed")
        others = {s: (lambda s=s: generate(s, 2048, resolution=res)) for s in systems}
        for system, t in alternate(others, rounds=rounds).items():
            print(f"{system} {res}x{res}: vectorised {2048 / median(t):8.1f} samples/s (2048 samples)")


if __name__ == "__main__":
    main()
