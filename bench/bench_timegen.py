"""Benchmark: trajectory generation, batched spectral generator vs a per-sample loop in the paper's style.

The baseline follows the generator of Zhou et al. (``data_gen/simulate2D.py``), made periodic on the unit square:
per sample, draw the sine modes and coefficients in Python, build the initial field mode by mode on a finer
grid (the paper's factors: 4 for heat and advection, 8 for Burgers), then heat: explicit Euler with the 5-point
Laplacian (dt 1e-4); advection: re-evaluate the sine sum at the shifted grid for each frame; Burgers:
explicit Euler with first-order upwind differences (dt 5e-5; the scalar equation, where the paper evolves two
identical components; upwinded by the sign of c u, where the paper takes the sign of c alone, which is
downwind wherever u < 0 and blows up on coarser grids); frames are kept by striding the fine grid.
Both run in the same process and take turns round by round (``_common.alternate``); figures are medians over
rounds. The baseline's error against the spectral solve from the same initial field is printed beside its speed.

    python bench/bench_timegen.py            # 32x32, 32 frames over 2 time units, 2 rounds (~10 minutes)
    python bench/bench_timegen.py --smoke    # 3 frames over 0.01 time units, seconds, for CI
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch
from _common import alternate, machine, median

from harness.pde import DEFAULT_REFINE, TIME_COEFS, TIME_SYSTEMS, resolve_time_ranges
from harness.pde.time_dataset import generate_time
from harness.pde.time_systems import AMPLITUDE, MAX_WAVENUMBER, N_MODES, solve_time

PAPER_DT = {"heat": 1e-4, "burgers": 5e-5}
PAPER_REFINE = {"heat": 4, "advection": 4, "burgers": 8}


def _lap(u: torch.Tensor) -> torch.Tensor:
    return torch.roll(u, 1, 0) + torch.roll(u, -1, 0) + torch.roll(u, 1, 1) + torch.roll(u, -1, 1) - 4 * u


def _sines(xx: torch.Tensor, yy: torch.Tensor, amp: np.ndarray, kx: np.ndarray, ky: np.ndarray,
           phase: np.ndarray) -> torch.Tensor:
    """The sum of sine modes on the grid (xx, yy), mode by mode (the paper's ``RandomSin.sample``)."""
    u = torch.zeros_like(xx)
    for j in range(len(amp)):
        u = u + amp[j] * torch.sin(2 * np.pi * (kx[j] * xx + ky[j] * yy) + phase[j])
    return u


def loop_generate(system: str, n: int, resolution: int, nt: int, horizon: float,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` trajectories (n, nt, R, R) one sample at a time, the paper's way; also returns the initial fields
    on the stored grid and the coefficients (n, 5), to measure the baseline's error."""
    rng = np.random.default_rng(seed)
    ranges = resolve_time_ranges(system)[system]
    fine = resolution * PAPER_REFINE[system]
    x = torch.arange(fine, dtype=torch.float64) / fine
    xx, yy = torch.meshgrid(x, x, indexing="ij")
    trajectories, coefs = [], []
    for _ in range(n):
        amp = rng.uniform(-AMPLITUDE, AMPLITUDE, N_MODES)
        kx, ky = rng.integers(1, MAX_WAVENUMBER + 1, N_MODES), rng.integers(1, MAX_WAVENUMBER + 1, N_MODES)
        phase = rng.uniform(0, 2 * np.pi, N_MODES)
        c = dict.fromkeys(TIME_COEFS, 0.0)
        if "nu" in ranges:
            c["nu"] = rng.uniform(*ranges["nu"])
        for name in ("a", "c"):
            if name in ranges:
                c[f"{name}x"], c[f"{name}y"] = rng.uniform(*ranges[name]), rng.uniform(*ranges[name])

        modes = (amp, kx, ky, phase)
        frames = torch.empty(nt, fine, fine, dtype=torch.float64)
        t = np.linspace(0, horizon, nt)
        if system == "advection":
            for j, tj in enumerate(t):
                frames[j] = _sines(xx - c["ax"] * tj, yy - c["ay"] * tj, *modes)
        else:
            every = math.ceil(horizon / (nt - 1) / PAPER_DT[system])
            dt, dx = horizon / (nt - 1) / every, 1.0 / fine
            u = frames[0] = _sines(xx, yy, *modes)
            for step in range(1, every * (nt - 1) + 1):
                if system == "heat":
                    u = u + c["nu"] * dt * _lap(u) / dx**2
                else:
                    adv = sum(c[k] * u * torch.where(c[k] * u > 0, u - torch.roll(u, 1, d), torch.roll(u, -1, d) - u)
                              for k, d in (("cx", 0), ("cy", 1)))
                    u = u + dt * (c["nu"] * _lap(u) / dx**2 - adv / dx)
                if torch.isnan(u).any():
                    raise ValueError("UNSTABLE")
                if step % every == 0:
                    frames[step // every] = u
        stride = PAPER_REFINE[system]
        trajectories.append(frames[:, ::stride, ::stride].numpy())
        coefs.append([c[k] for k in TIME_COEFS])
    u = np.stack(trajectories)
    return u, u[:, 0], np.array(coefs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one round (CI)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--systems", nargs="+", choices=TIME_SYSTEMS, default=TIME_SYSTEMS)
    parser.add_argument("--accuracy", action="store_true",
                        help="also: Burgers frames at refine 2 and 4 against refine 8, per shift level")
    args = parser.parse_args()
    if args.smoke:
        res, nt, horizon, rounds = 32, 3, 0.01, 1
        n_loop, n_vec = {"heat": 1, "advection": 1, "burgers": 1}, {"heat": 256, "advection": 256, "burgers": 16}
    else:
        res, nt, horizon, rounds = 32, 32, 2.0, args.rounds
        n_loop, n_vec = {"heat": 2, "advection": 8, "burgers": 1}, {"heat": 4096, "advection": 4096, "burgers": 32}
    torch.set_num_threads(1)  # the loop's per-step tensors are small: threads only add synchronisation
    print(f"machine: {machine(torch.device('cpu'))}; scipy.fft with all cores for the vectorised generator")
    print(f"{res}x{res}, {nt} frames over {horizon} time units; Burgers solve grid {res * DEFAULT_REFINE}^2 "
          f"(loop: {res * PAPER_REFINE['burgers']}^2)")
    for system in args.systems:
        last: dict[str, tuple] = {}

        def loop(system: str = system, last: dict = last) -> None:
            last["loop"] = loop_generate(system, n_loop[system], res, nt, horizon)

        def vectorised(system: str = system) -> object:
            return generate_time(system, n_vec[system], resolution=res, nt=nt, horizon=horizon)

        times = alternate({"loop": loop, "vectorised": vectorised}, rounds=rounds, warmup=0)
        slow, fast = n_loop[system] / median(times["loop"]), n_vec[system] / median(times["vectorised"])
        u, u0, coefs = last["loop"]
        exact = solve_time(system, u0, coefs, np.linspace(0, horizon, nt))
        error = np.sqrt(((u - exact) ** 2).sum(axis=(2, 3)) / (exact**2).sum(axis=(2, 3))).max()
        print(f"{system:9s}: per-sample loop {slow:8.3f} samples/s ({n_loop[system]} samples; max rel L2 vs "
              f"spectral {error:.1e}), vectorised {fast:8.1f} samples/s ({n_vec[system]} samples), "
              f"speed-up {fast / slow:.0f}x (median of {rounds})")
    if args.accuracy:
        burgers_accuracy(res, nt, horizon, n=4)


def burgers_accuracy(res: int, nt: int, horizon: float, n: int) -> None:
    """Max over samples and frames of the relative L2 distance of the stored frames at refine 2 and 4 from
    those at refine 8 (the same initial conditions and coefficients), at each Burgers shift level."""
    for level in ("id", "ood"):
        frames = {r: generate_time("burgers", n, shift=level, resolution=res, nt=nt, horizon=horizon, refine=r,
                                   dtype=np.float64).u for r in (2, 4, 8)}
        ref = frames[8]
        errors = {r: np.sqrt(((frames[r] - ref) ** 2).sum(axis=(2, 3)) / (ref**2).sum(axis=(2, 3))).max()
                  for r in (2, 4)}
        print(f"burgers {level:3s}: stored frames vs refine 8, max rel L2 over {n} samples: "
              + ", ".join(f"refine {r} {e:.1e}" for r, e in errors.items()))


if __name__ == "__main__":
    main()
