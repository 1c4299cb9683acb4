"""Each system's operator is whole in its input channels, so per-instance normalisation loses nothing.

The common channels (k11, k22, k12, v1, v2, omega) are the coefficients of -div(K grad u) + v.grad u - omega u;
a source f and channels c, scaled together by s, give the same solution and the same normalised input, and
the shifted coefficient of each system (e, Psi, omega) can be read back from the normalised input alone.
"""

from __future__ import annotations

import numpy as np
import pytest

from harness.pde import COMMON_CHANNELS, SYSTEMS
from harness.pde.fourier import irfft2, rfft2
from harness.pde.steady_dataset import compute_stats, generate
from harness.pde.steady_systems import operator_symbol, solve_channels
from harness.train.normalise import make_inputs

R = 16
SCALES = np.geomspace(0.05, 40.0, 12)


def _data(system: str):
    data = generate(system, len(SCALES), resolution=R, seed=5, dtype=np.float64)
    return data, compute_stats(data)


@pytest.mark.parametrize("system", SYSTEMS)
def test_scaling_source_and_channels_together_changes_neither_solution_nor_input(system: str) -> None:
    d, stats = _data(system)
    s = SCALES
    solution = solve_channels(rfft2(d.source), d.coef_common, R)
    scaled = solve_channels(rfft2(s[:, None, None] * d.source), s[:, None] * d.coef_common, R)
    np.testing.assert_allclose(solution, d.solution, atol=1e-12 * np.abs(d.solution).max())
    np.testing.assert_allclose(scaled, solution, atol=1e-12 * np.abs(solution).max())
    x = make_inputs(d.source, d.coef_common, stats).numpy()
    xs = make_inputs(s[:, None, None] * d.source, s[:, None] * d.coef_common, stats).numpy()
    np.testing.assert_allclose(xs, x, rtol=1e-5, atol=1e-6)


def _channels(x: np.ndarray, stats: dict) -> np.ndarray:
    """The common channels of a normalised input, up to each sample's unknown scale: c_i / s_i."""
    return x[:, 1:, 0, 0].astype(np.float64) * np.asarray(stats["coef_scale"])


def _read_back(system: str, x: np.ndarray, stats: dict) -> np.ndarray:
    """The shifted coefficient of each sample, from its normalised input alone."""
    c = _channels(x, stats)
    if system == "poisson":  # e = ratio of the eigenvalues of K
        k = np.stack([np.stack([c[:, 0], c[:, 2]], 1), np.stack([c[:, 2], c[:, 1]], 1)], 1)
        eig = np.linalg.eigvalsh(k)
        return eig[:, 1] / eig[:, 0]
    if system == "helmholtz":  # omega relative to the Laplacian's 0.01
        return 0.01 * c[:, COMMON_CHANNELS.index("omega")] / c[:, 0]
    # advection_diffusion: Psi = ||advection term|| / ||diffusion term|| of the solution the channels give
    u_hat = rfft2(solve_channels(rfft2(x[:, 0].astype(np.float64)), c, x.shape[-1]))
    advection, diffusion = c.copy(), c.copy()
    advection[:, :3], diffusion[:, 3:5] = 0.0, 0.0
    norm = [np.linalg.norm(irfft2(u_hat * operator_symbol(k, R), (R, R)), axis=(1, 2)) for k in (advection, diffusion)]
    return norm[0] / norm[1]


@pytest.mark.parametrize(("system", "param"),
                         [("poisson", "e"), ("advection_diffusion", "psi"), ("helmholtz", "omega")])
def test_the_shifted_coefficient_is_read_back_from_a_normalised_input(system: str, param: str) -> None:
    d, stats = _data(system)
    s = SCALES[:, None]
    for source, coef in ((d.source, d.coef_common), (s[..., None] * d.source, s * d.coef_common)):
        got = _read_back(system, make_inputs(source, coef, stats).numpy(), stats)
        np.testing.assert_allclose(got, d.params[param], rtol=1e-4)


def test_without_its_laplacian_channels_helmholtz_loses_omega() -> None:
    """The earlier layout (omega alone): two different problems give one normalised input."""
    d, stats = _data("helmholtz")
    omega_only = d.coef_common.copy()
    omega_only[:, :3] = 0.0
    s = SCALES[:, None]
    x = make_inputs(d.source, omega_only, stats).numpy()
    xs = make_inputs(s[..., None] * d.source, s * omega_only, stats).numpy()
    np.testing.assert_allclose(xs, x, rtol=1e-5, atol=1e-6)  # the same input ...
    scaled = d.coef_common * np.where(np.arange(6) == 5, s, 1.0)  # ... of a problem with omega scaled by s
    other = solve_channels(rfft2(s[..., None] * d.source), scaled, R)
    gap = np.abs(other[SCALES != 1] - d.solution[SCALES != 1]).max(axis=(1, 2))
    assert (gap > 1e-3 * np.abs(d.solution).max()).all()  # ... but another solution
