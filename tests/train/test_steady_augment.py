"""Augmentations on real PDE data: shifted pairs still solve their PDE, scaled pairs stay consistent."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness import pde
from harness.errors import HarnessError
from harness.job import TrainConfig
from harness.pde.fourier import spectral_grad, spectral_hessian
from harness.pde.steady_dataset import PDEData, compute_stats, generate
from harness.train.normalise import make_inputs
from harness.train.steady_augment import make_augment, roll, scale, shift

R = 32


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def pair64(system: str, n: int = 4) -> tuple[PDEData, torch.Tensor, torch.Tensor]:
    """float64 data and its (x, y) batch: x = (source, 6 constant coefficient channels), y = solution."""
    data = generate(system, n, resolution=R, seed=3, dtype=np.float64)
    f = torch.from_numpy(data.source)[:, None]
    k = torch.from_numpy(data.coef_common)[:, :, None, None].expand(n, 6, R, R)
    return data, torch.cat([f, k], dim=1), torch.from_numpy(data.solution)[:, None]


def residual(system: str, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-sample max |L u - f| / max |f| with L the system's operator, coefficients read from x."""
    u, f, c = y[:, 0], x[:, 0], x[:, 1:, 0, 0].T[:, :, None, None]
    ux, uy = spectral_grad(u)
    uxx, uyy, uxy = spectral_hessian(u)
    if system == "helmholtz":
        lu = -0.01 * (uxx + uyy) - c[5] * u
    else:  # poisson: c3 = c4 = 0; advection_diffusion: c = ((1 - lam) K, lam v)
        lu = -(c[0] * uxx + c[1] * uyy + 2 * c[2] * uxy) + c[3] * ux + c[4] * uy
    return (lu - f).abs().amax(dim=(-2, -1)) / f.abs().amax(dim=(-2, -1))


def test_roll_is_torch_roll_per_sample():
    t = torch.randn(3, 2, 8, 6, generator=generator())
    dx, dy = torch.tensor([0, 3, -1]), torch.tensor([5, 0, 2])
    rolled = roll(t, dx, dy)
    for b in range(3):
        assert torch.equal(rolled[b], torch.roll(t[b], (int(dx[b]), int(dy[b])), dims=(-2, -1)))


@pytest.mark.parametrize("system", pde.SYSTEMS)
def test_a_shifted_pair_still_solves_the_pde_to_round_off(system):
    _, x, y = pair64(system)
    assert residual(system, x, y).max() < 1e-10
    xs, ys = make_augment("shift", prob=1.0, noise_level=0.0, scale_max=1.0)(x, y, generator())
    assert xs.dtype == torch.float64
    assert not torch.equal(ys, y)  # it moved
    assert torch.equal(xs[:, 1:], x[:, 1:])  # constant coefficient channels unaffected
    assert residual(system, xs, ys).max() < 1e-10
    # and the source and solution moved together: the same offsets as a plain roll of the pair
    dx, dy = torch.tensor([1, 2, 3, 4]), torch.tensor([5, 0, 7, 1])
    assert residual(system, *shift(x, y, dx, dy)).max() < 1e-10
    assert residual(system, x, roll(y, dx, dy)).max() > 1e-2  # a solution rolled alone is not one


@pytest.mark.parametrize("system", pde.SYSTEMS)
def test_scale_gives_the_normalised_pair_of_the_scaled_source(system):
    data = generate(system, 6, resolution=R, seed=1)
    stats = compute_stats(data)
    x, y = make_inputs(data.source, data.coef_common, stats), torch.from_numpy(data.solution)[:, None]
    a = torch.tensor([0.5, 1.0, 2.0, 3.7, 0.3, 1.25])
    xs, ys = scale(x, y, a)
    expected_x = make_inputs(data.source * a.numpy()[:, None, None], data.coef_common, stats)
    torch.testing.assert_close(xs, expected_x, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ys, y * a[:, None, None, None])
    # the raw pair (a f, a u) solves the same PDE: linearity, checked on the float64 data
    _, x64, y64 = pair64(system)
    a64 = torch.tensor([0.5, 2.0, 3.0, 0.25], dtype=torch.float64)[:, None, None, None]
    scaled = torch.cat([x64[:, :1] * a64, x64[:, 1:]], dim=1)
    assert residual(system, scaled, y64 * a64).max() < 1e-10


def test_random_scale_draws_factors_in_range_and_keeps_the_pair_consistent():
    x = torch.rand(200, 7, 8, 8, generator=generator()) + 0.5
    y = torch.randn(200, 1, 8, 8, generator=generator(1))
    xs, ys = make_augment("scale", prob=1.0, noise_level=0.0, scale_max=3.0)(x, y, generator())
    a = (ys / y)[:, 0, 0, 0]
    assert a.min() >= 1 / 3 - 1e-6 and a.max() <= 3 + 1e-6 and a.std() > 0.3
    torch.testing.assert_close(xs, scale(x, y, a)[0])


def test_noise_touches_only_the_source_at_the_configured_level():
    x = torch.randn(64, 7, 16, 16, generator=generator())
    y = torch.randn(64, 1, 16, 16, generator=generator(1))
    xn, yn = make_augment("noise", prob=1.0, noise_level=0.1, scale_max=1.0)(x, y, generator())
    assert torch.equal(yn, y) and torch.equal(xn[:, 1:], x[:, 1:])
    rms = x[:, :1].square().mean(dim=(-2, -1)).sqrt()
    ratio = ((xn - x)[:, :1].square().mean(dim=(-2, -1)).sqrt() / rms).flatten()
    assert ratio.mean().item() == pytest.approx(0.1, rel=0.05)


@pytest.mark.parametrize("kind", ["shift", "noise", "scale"])
def test_each_sample_is_augmented_with_the_given_probability_deterministically(kind):
    x = torch.randn(400, 7, 8, 8, generator=generator()) + 2.0  # nonzero coefficient channels for scale
    y = torch.randn(400, 1, 8, 8, generator=generator(1))
    augment = make_augment(kind, prob=0.3, noise_level=0.1, scale_max=2.0)
    xa, ya = augment(x, y, generator(5))
    changed = ((xa != x).flatten(1).any(dim=1) | (ya != y).flatten(1).any(dim=1)).float().mean().item()
    assert changed == pytest.approx(0.3, abs=0.08)
    xb, yb = augment(x, y, generator(5))
    assert torch.equal(xa, xb) and torch.equal(ya, yb)
    x0, y0 = make_augment(kind, prob=0.0, noise_level=0.1, scale_max=2.0)(x, y, generator(5))
    assert torch.equal(x0, x) and torch.equal(y0, y)


def test_augment_settings_are_validated():
    assert make_augment("none", prob=0.5, noise_level=0.05, scale_max=2.0) is None
    with pytest.raises(HarnessError, match="augment of steady .* must be one of"):
        make_augment("flip", prob=0.5, noise_level=0.05, scale_max=2.0)
    with pytest.raises(HarnessError, match="galilean is a symmetry of time-dependent systems"):
        make_augment("galilean", prob=0.5, noise_level=0.05, scale_max=2.0)
    with pytest.raises(HarnessError, match="augment"):
        TrainConfig.from_dict({"augment": "flip"})
    with pytest.raises(HarnessError, match="0 <= augment_prob <= 1"):
        TrainConfig.from_dict({"augment": "shift", "augment_prob": 1.5})
    with pytest.raises(HarnessError, match="scale_max >= 1"):
        TrainConfig.from_dict({"augment": "scale", "scale_max": 0.5})
