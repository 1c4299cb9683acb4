"""Sum-of-Gaussians sources on a 12 x 12 lattice (the data of Subramanian et al. 2023, periodic version).

Each Gaussian (width 1/32, lattice spacing 1/16, lattice centred at (0.5, 0.5)) is on with probability
``1 - vf``, with an amplitude ~ U(1e-3, 1); at least one is on. Distances are minimum-image, so sources are
smooth and periodic. A periodic Gaussian is a product of 1D Gaussians, so a source is
``f = G^T A G`` with ``G`` the (12, R) matrix of 1D Gaussians and ``A`` the 12 x 12 amplitude matrix: two
small matrix products per sample instead of 144 full-grid exponentials.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

LATTICE = 12
SIGMA = 1.0 / 32.0
SPACING = 1.0 / 16.0
VF_LEVELS = (0.2, 0.4, 0.6, 0.8)
AMPLITUDE_RANGE = (1e-3, 1.0)


def vf_of(index: np.ndarray) -> np.ndarray:
    """Vacancy fraction by global sample index, ``VF_LEVELS[i % 4]``: every prefix spreads over the four."""
    return np.asarray(VF_LEVELS)[np.asarray(index) % len(VF_LEVELS)]


@lru_cache(maxsize=16)
def lattice_gaussians(resolution: int) -> np.ndarray:
    """The (12, R) float64 matrix of periodic 1D Gaussians ``exp(-d^2 / (2 sigma^2))`` (read-only)."""
    x = np.arange(resolution) / resolution
    centres = 0.5 + (np.arange(LATTICE) - (LATTICE - 1) / 2) * SPACING
    d = (x[None, :] - centres[:, None] + 0.5) % 1.0 - 0.5
    g = np.exp(-(d**2) / (2.0 * SIGMA**2))
    g.setflags(write=False)
    return g


def draw_amplitudes(rng: np.random.Generator, vf: np.ndarray) -> np.ndarray:
    """Amplitude matrices ``A`` of shape (B, 12, 12) for vacancy fractions ``vf`` (B,).

    Consumes a fixed amount of the stream per call for a given B, whatever the outcome.
    """
    b = len(vf)
    on = rng.random((b, LATTICE, LATTICE)) < (1.0 - np.asarray(vf))[:, None, None]
    amps = rng.uniform(*AMPLITUDE_RANGE, size=(b, LATTICE, LATTICE))
    fallback = rng.integers(0, LATTICE * LATTICE, size=b)
    flat = on.reshape(b, LATTICE * LATTICE)
    empty = ~flat.any(axis=1)
    flat[empty, fallback[empty]] = True
    return np.where(on, amps, 0.0)


def build_sources(amps: np.ndarray, resolution: int, dtype: np.dtype, zero_mean: bool) -> np.ndarray:
    """Sources ``G^T A G`` (B, R, R) in ``dtype``, divided by their max and, if ``zero_mean``, centred."""
    g = lattice_gaussians(resolution).astype(dtype)
    f = g.T @ (amps.astype(dtype) @ g)
    f /= f.max(axis=(1, 2), keepdims=True)
    if zero_mean:
        f -= f.mean(axis=(1, 2), keepdims=True, dtype=np.float64).astype(dtype)
    return f
