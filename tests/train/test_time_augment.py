"""Trajectory augmentations map solutions to solutions: each transformed trajectory is what the solver gives
from its transformed first frame with the transformed coefficients. Where an augmentation is not a symmetry,
it is refused with the reason."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from harness.errors import SweepError
from harness.pde import TIME_AUGMENTS, TIME_SYSTEMS, check_augment
from harness.pde.time_dataset import generate_time
from harness.pde.time_systems import solve_time
from harness.train.time_augment import add_noise, galilean, make_time_augment, scale, shift

R = 16
# Round-off where the map commutes with the solver exactly; Burgers boosts change max|u| and with it the
# CFL-bounded step, so they agree to the time discretisation (~1e-6 at the default Courant number).
TOL = {"shift": 1e-12, "scale": 1e-12, "galilean": 1e-5}


@pytest.fixture(scope="module")
def batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two trajectories of each system (float64), frames over half a time unit."""
    d = generate_time("mixed_time", 6, resolution=R, nt=5, horizon=0.5, dtype=np.float64)
    return (torch.tensor(d.u), torch.tensor(d.t), torch.tensor(d.coef_common), torch.tensor(d.params["system"]))


def _residual(u: torch.Tensor, t: torch.Tensor, coefs: torch.Tensor, systems: torch.Tensor) -> np.ndarray:
    """Per sample: max |u - solve(u[:, 0], coefs)| / max |u|."""
    out = []
    for i, s in enumerate(systems.tolist()):
        again = solve_time(TIME_SYSTEMS[s], u[i:i + 1, 0].numpy(), coefs[i:i + 1].numpy(), t.numpy())
        out.append(np.abs(again[0] - u[i].numpy()).max() / np.abs(u[i].numpy()).max())
    return np.array(out)


@pytest.mark.parametrize("kind", ["shift", "scale", "galilean"])
def test_augmented_trajectories_solve_their_equations(batch, kind: str):
    u, t, coefs, systems = batch
    assert _residual(u, t, coefs, systems).max() < 1e-12  # the data themselves
    new_u, new_coefs = make_time_augment(kind, prob=1.0)(u, t, coefs, systems, torch.Generator().manual_seed(1))
    changed = (new_u - u).flatten(1).abs().amax(1) > 1e-3
    heat = systems == 0
    assert changed[~heat].all() and (changed[heat].all() if kind != "galilean" else not changed[heat].any())
    residual = _residual(new_u, t, new_coefs, systems)
    assert residual.max() < TOL[kind], residual
    # Burgers keeps a = 0, advection keeps nu = c = 0, heat keeps a = c = 0: each stays in its own equation.
    assert not new_coefs[systems == 2][:, 1:3].any() and not new_coefs[systems == 1][:, [0, 3, 4]].any()
    assert not new_coefs[heat][:, 1:].any()


def test_laws_on_the_coefficients(batch):
    u, t, coefs, systems = batch
    lam = torch.tensor([2.0, -0.5, 3.0, 1.0, 0.25, -4.0], dtype=torch.float64)
    scaled, c = scale(u, coefs, lam)
    torch.testing.assert_close(scaled, u * lam[:, None, None, None])
    torch.testing.assert_close(c[:, 3:], coefs[:, 3:] / lam[:, None])
    torch.testing.assert_close(c[:, :3], coefs[:, :3])
    v, w = torch.tensor([[0.3, -0.2]]).double().repeat(6, 1), torch.full((6,), 0.7, dtype=torch.float64)
    boosted, c = galilean(u, t, coefs, v, w)
    torch.testing.assert_close(c[:, 1:3], coefs[:, 1:3] + v - w[:, None] * coefs[:, 3:])
    torch.testing.assert_close(boosted[:, 0], u[:, 0] + 0.7)  # t = 0: only the offset


def test_shift_is_a_sub_pixel_fourier_shift_and_a_whole_cell_roll():
    x = torch.arange(R, dtype=torch.float64) / R
    field = torch.sin(2 * torch.pi * (2 * x[:, None] + 3 * x[None, :]) + 0.4)[None, None]
    moved = shift(field, torch.tensor([0.013], dtype=torch.float64), torch.tensor([-0.21], dtype=torch.float64))
    expected = torch.sin(2 * torch.pi * (2 * (x[:, None] - 0.013) + 3 * (x[None, :] + 0.21)) + 0.4)
    torch.testing.assert_close(moved[0, 0], expected, atol=1e-13, rtol=0)
    rolled = shift(field, torch.tensor([3 / R]), torch.tensor([0.0]))
    torch.testing.assert_close(rolled, torch.roll(field, 3, dims=-2), atol=1e-13, rtol=0)


def test_noise_touches_input_frames_only_and_scales_with_rms(batch):
    u, t, coefs, systems = batch
    noisy, c = make_time_augment("noise", prob=1.0, noise_level=0.1)(u, t, coefs, systems,
                                                                   torch.Generator().manual_seed(0), n_inputs=3)
    assert torch.equal(noisy[:, 3:], u[:, 3:]) and torch.equal(c, coefs)
    rms = u[:, :3].square().mean(dim=(1, 2, 3)).sqrt()  # over the noised frames
    ratio = (noisy[:, :3] - u[:, :3]).square().mean(dim=(1, 2, 3)).sqrt() / rms
    np.testing.assert_allclose(ratio.numpy(), 0.1, rtol=0.1)
    assert _residual(noisy, t, coefs, systems).max() > 1e-2  # not a symmetry
    torch.testing.assert_close(add_noise(u, torch.zeros(6), torch.ones_like(u)), u)


def test_draws_are_deterministic_and_prob_zero_is_identity(batch):
    u, t, coefs, systems = batch
    aug = make_time_augment("galilean", prob=0.5)
    first, second = (aug(u, t, coefs, systems, torch.Generator().manual_seed(7)) for _ in range(2))
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    same = make_time_augment("scale", prob=0.0)(u, t, coefs, systems, torch.Generator().manual_seed(7))
    assert torch.equal(same[0], u) and torch.equal(same[1], coefs)
    assert make_time_augment("none", prob=1.0) is None


def test_check_augment_refuses_a_boost_of_heat_with_the_reason():
    for system in (*TIME_SYSTEMS, "mixed_time"):
        for augment in TIME_AUGMENTS:
            if (system, augment) != ("heat", "galilean"):
                check_augment(system, augment)
    message = ("augment 'galilean' does not apply to heat: a boost u(x - v t, t) solves u_t + v . grad u = "
               "nu Lap u, an advection-diffusion equation")
    with pytest.raises(SweepError, match=re.escape(message)) as info:
        check_augment("heat", "galilean")
    assert str(info.value).endswith("choose one of none, shift, scale, noise") and "\n" not in str(info.value)
    with pytest.raises(SweepError, match="augment must be one of none, shift, scale, galilean, noise, got 'flip'"):
        check_augment("burgers", "flip")
