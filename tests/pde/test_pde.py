"""harness.pde: each system's solution satisfies its PDE, coefficients sample their ranges, generation is
deterministic and prefix-stable, bad requests fail with one clear line."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from harness.errors import DataError
from harness.pde import CHANNELS, COMMON_CHANNELS, SHIFT_LEVELS, SYSTEMS, resolve_range, steady_systems
from harness.pde.fourier import rfft2, spectral_grad, spectral_hessian
from harness.pde.steady_dataset import BLOCK, generate
from harness.pde.steady_sources import VF_LEVELS
from harness.pde.steady_systems import solve_channels

R = 32
TWO_PI = 2 * np.pi


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def _centred(f: np.ndarray) -> np.ndarray:
    return f - f.mean(axis=(-2, -1), keepdims=True)


def _col(c: np.ndarray) -> np.ndarray:
    return c[:, None, None]


def _diffusion(u: np.ndarray, k11, k22, k12) -> np.ndarray:
    """div(K grad u) from the public derivative helpers (independent of the solver's symbols)."""
    uxx, uyy, uxy = spectral_hessian(u)
    return _col(k11) * uxx + _col(k22) * uyy + 2 * _col(k12) * uxy


def _advection(u: np.ndarray, v1, v2) -> np.ndarray:
    ux, uy = spectral_grad(u)
    return _col(v1) * ux + _col(v2) * uy


# --- each sample solves its PDE ------------------------------------------------------------------------------

def test_poisson_solution_satisfies_pde():
    d = generate("poisson", 24, resolution=R, seed=1, dtype=np.float64)
    residual = -_diffusion(d.solution, *d.coefficients.T)
    assert _rel(residual, _centred(d.source)) < 1e-10
    assert np.abs(d.solution.mean(axis=(1, 2))).max() < 1e-14


def test_advection_diffusion_solution_satisfies_pde():
    d = generate("advection_diffusion", 24, resolution=R, seed=1, dtype=np.float64)
    k11, k22, k12, v1, v2 = d.coefficients.T
    residual = _advection(d.solution, v1, v2) - _diffusion(d.solution, k11, k22, k12)
    assert _rel(residual, _centred(d.source)) < 1e-10
    assert np.abs(d.solution.mean(axis=(1, 2))).max() < 1e-14


def test_helmholtz_solution_satisfies_pde():
    d = generate("helmholtz", 24, shift="large", resolution=R, seed=1, dtype=np.float64)
    uxx, uyy, _ = spectral_hessian(d.solution)
    k11, k22, k12, omega = d.coefficients.T
    np.testing.assert_array_equal(np.stack([k11, k22, k12], 1), np.tile([0.01, 0.01, 0.0], (24, 1)))
    residual = -0.01 * (uxx + uyy) - _col(omega) * d.solution
    assert _rel(residual, d.source) < 1e-10


def test_float32_output_solves_the_pde_of_its_own_source():
    d = generate("poisson", 8, resolution=R, seed=2)
    assert d.source.dtype == d.solution.dtype == np.float32
    residual = -_diffusion(d.solution.astype(np.float64), *d.coefficients.T)
    assert _rel(residual, _centred(d.source.astype(np.float64))) < 1e-5


def _manufactured(n: int = 64):
    """u = exp(sin 2 pi x) cos 2 pi y (not band-limited, zero mean) and its exact derivatives."""
    x = np.arange(n)[:, None] / n
    y = np.arange(n)[None, :] / n
    s, c, sy, cy = np.sin(TWO_PI * x), np.cos(TWO_PI * x), np.sin(TWO_PI * y), np.cos(TWO_PI * y)
    u = np.exp(s) * cy
    ux, uy = TWO_PI * c * u, -TWO_PI * np.exp(s) * sy
    uxx, uyy, uxy = TWO_PI**2 * (c**2 - s) * u, -(TWO_PI**2) * u, -(TWO_PI**2) * c * np.exp(s) * sy
    return u[None], ux[None], uy[None], uxx[None], uyy[None], uxy[None]


def test_spectral_derivatives_reach_spectral_accuracy_numpy_and_torch():
    u, *exact = _manufactured()
    got = [*spectral_grad(u), *spectral_hessian(u)]
    for g, e in zip(got, exact, strict=True):
        assert np.abs(g - e).max() < 1e-10
    got_t = [*spectral_grad(torch.from_numpy(u)), *spectral_hessian(torch.from_numpy(u))]
    for g, e in zip(got_t, exact, strict=True):
        assert isinstance(g, torch.Tensor) and np.abs(g.numpy() - e).max() < 1e-10


@pytest.mark.parametrize("system", SYSTEMS)
def test_manufactured_solution_is_recovered(system: str):
    """Each system is the operator -div(K grad u) + v.grad u - omega u of its channels, solved exactly."""
    u, ux, uy, uxx, uyy, uxy = _manufactured()
    n = u.shape[-1]
    coef = {"poisson": [0.013, 0.021, -0.004, 0, 0, 0], "advection_diffusion": [0.009, 0.015, -0.003, 0.18, -0.24, 0],
            "helmholtz": [0.01, 0.01, 0, 0, 0, 7.0]}[system]
    k11, k22, k12, v1, v2, omega = coef
    f = -(k11 * uxx + k22 * uyy + 2 * k12 * uxy) + v1 * ux + v2 * uy - omega * u
    got = solve_channels(rfft2(f), np.array([coef], dtype=float), n)
    assert np.abs(got - u).max() < 1e-12


# --- physics constraints and coefficient ranges --------------------------------------------------------------

def test_helmholtz_solutions_are_bounded_and_omega_integer():
    for level in ("id", "large"):
        d = generate("helmholtz", 300, shift=level, resolution=16, seed=3)
        assert np.abs(d.solution).max() <= 2.0
        omega = d.params["omega"]
        assert np.array_equal(omega, np.round(omega))
        assert (omega.min(), omega.max()) == SHIFT_LEVELS["helmholtz"][level]


@pytest.mark.parametrize("level", ["id", "moderate", "large"])
def test_advection_diffusion_realised_psi_hits_target(level: str):
    d = generate("advection_diffusion", 64, shift=level, resolution=R, seed=4, dtype=np.float64)
    k11, k22, k12, v1, v2 = d.coefficients.T
    adv = np.linalg.norm(_advection(d.solution, v1, v2), axis=(1, 2))
    diff = np.linalg.norm(_diffusion(d.solution, k11, k22, k12), axis=(1, 2))
    psi = adv / diff
    np.testing.assert_allclose(psi, d.params["psi"], rtol=1e-6)
    lo, hi = SHIFT_LEVELS["advection_diffusion"][level]
    assert (psi >= lo * (1 - 1e-6)).all() and (psi <= hi * (1 + 1e-6)).all()
    lam = d.params["lam"]
    assert ((lam > 0) & (lam < 1)).all()
    np.testing.assert_allclose(d.coefficients[:, 3:], lam[:, None] * d.params["v"], rtol=1e-12)


def test_advection_diffusion_psi_at_full_resolution():
    """At 128^2 the lam solve skips modes without source power: the realised Psi must still be exact."""
    d = generate("advection_diffusion", 8, shift="moderate", resolution=128, dtype=np.float64)
    k11, k22, k12, v1, v2 = d.coefficients.T
    psi = (np.linalg.norm(_advection(d.solution, v1, v2), axis=(1, 2))
           / np.linalg.norm(_diffusion(d.solution, k11, k22, k12), axis=(1, 2)))
    np.testing.assert_allclose(psi, d.params["psi"], rtol=1e-9)


@pytest.mark.parametrize(("system", "name", "shift"), [
    ("poisson", "e", "id"), ("poisson", "e", "large"), ("advection_diffusion", "psi", "diffusion"),
    ("advection_diffusion", "psi", [0.5, 0.7]), ("helmholtz", "omega", "moderate")])
def test_shifted_coefficient_covers_its_range(system: str, name: str, shift):
    d = generate(system, 400, shift=shift, resolution=8, seed=5)
    lo, hi = resolve_range(system, shift)
    values = d.params[name]
    assert values.min() >= lo and values.max() <= hi
    tol = 0.05 * (hi - lo)
    assert values.min() - lo < tol and hi - values.max() < tol


def test_poisson_tensor_is_rotated_anisotropy():
    d = generate("poisson", 200, shift="moderate", resolution=8, seed=6, dtype=np.float64)
    k11, k22, k12 = d.coefficients.T
    tensors = np.stack([np.stack([k11, k12], 1), np.stack([k12, k22], 1)], 1)
    eig = np.linalg.eigvalsh(tensors)
    np.testing.assert_allclose(eig[:, 0], 0.01, rtol=1e-12)
    np.testing.assert_allclose(eig[:, 1], 0.01 * d.params["e"], rtol=1e-12)
    assert d.params["theta"].min() < 0.3 and d.params["theta"].max() > 2 * np.pi - 0.3


def test_helmholtz_gives_up_with_a_clear_error(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(steady_systems, "HELMHOLTZ_MAX_U", 1e-9)  # every sample "resonant"
    with pytest.raises(DataError, match=r"after 100 redraws at omega in \[1, 10\]: choose a range away"):
        generate("helmholtz", 2, resolution=8)


def test_sources_vf_blocks_and_normalisation():
    d = generate("helmholtz", 40, resolution=16, seed=7)
    np.testing.assert_array_equal(d.params["vf"], np.array(VF_LEVELS)[np.arange(40) % 4])
    np.testing.assert_allclose(d.source.max(axis=(1, 2)), 1.0, rtol=1e-6)
    p = generate("poisson", 40, resolution=16, seed=7)
    assert np.abs(p.source.mean(axis=(1, 2))).max() < 1e-6
    # Periodic and smooth: spectrum decays to round-off well before the Nyquist mode.
    spectrum = np.abs(np.fft.rfft2(generate("poisson", 4, resolution=128, dtype=np.float64).source))
    assert spectrum[:, 40:88, :].max() < 1e-10 * spectrum.max()


def test_common_layout_per_system():
    for system in SYSTEMS:
        d = generate(system, 6, resolution=8)
        assert d.channels == CHANNELS[system] and d.coefficients.shape == (6, len(CHANNELS[system]))
        columns = [COMMON_CHANNELS.index(c) for c in CHANNELS[system]]
        np.testing.assert_array_equal(d.coef_common[:, columns], d.coefficients)
        others = [i for i in range(6) if i not in columns]
        assert not d.coef_common[:, others].any()


def test_mixed_interleaves_the_three_systems():
    d = generate("mixed", 10, shift="moderate", resolution=16, seed=8)
    np.testing.assert_array_equal(d.params["system"], np.arange(10) % 3)
    assert d.coefficients.shape == (10, 6) and d.channels == COMMON_CHANNELS
    helm = generate("helmholtz", 3, shift="moderate", resolution=16, seed=8)
    np.testing.assert_array_equal(d.solution[2::3], helm.solution)
    np.testing.assert_array_equal(d.coef_common[2::3], helm.coef_common)
    assert np.array_equal(generate("mixed", 4, resolution=8).source, generate("mixed", 9, resolution=8).source[:4])


# --- determinism and prefix stability -------------------------------------------------------------------------

@pytest.mark.parametrize("system", SYSTEMS)
def test_same_seed_identical_different_seed_differs(system: str):
    a, b = (generate(system, 6, resolution=16, seed=11) for _ in range(2))
    for name in ("source", "solution", "coefficients"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    c = generate(system, 6, resolution=16, seed=12)
    assert not np.array_equal(a.source, c.source) and not np.array_equal(a.coefficients, c.coefficients)


@pytest.mark.parametrize("system", SYSTEMS)
def test_prefix_stable_within_and_across_blocks(system: str):
    small, large = generate(system, 8, resolution=16), generate(system, 16, resolution=16)
    assert np.array_equal(small.solution, large.solution[:8])
    m = 3 * BLOCK + 5  # ends inside a block
    a, b = generate(system, m, resolution=8), generate(system, 5 * BLOCK, resolution=8)
    for name in ("source", "solution", "coefficients"):
        assert np.array_equal(getattr(a, name), getattr(b, name)[:m])
    assert np.array_equal(a.params["vf"], b.params["vf"][:m])


@pytest.mark.parametrize("system", SYSTEMS)
def test_prefix_stable_at_full_resolution(system: str):
    a, b = generate(system, BLOCK + 1, resolution=128), generate(system, BLOCK + 3, resolution=128)
    for name in ("source", "solution", "coefficients"):
        assert np.array_equal(getattr(a, name), getattr(b, name)[: BLOCK + 1])


def test_other_range_draws_other_sources():
    a = generate("poisson", 4, shift="id", resolution=16)
    b = generate("poisson", 4, shift="moderate", resolution=16)
    assert not np.array_equal(a.source, b.source)
    c = generate("poisson", 4, coef_range=[1, 5], resolution=16)
    assert np.array_equal(a.solution, c.solution)


# --- ranges and bad requests ----------------------------------------------------------------------------------

def test_resolve_range_levels_and_aliases():
    assert resolve_range("poisson") == (1.0, 5.0)
    assert resolve_range("advection_diffusion", "advection") == resolve_range("advection_diffusion", "moderate")
    assert resolve_range("advection_diffusion", "diffusion") == (0.01, 0.2)
    assert resolve_range("helmholtz", "large") == (20, 30)
    assert resolve_range("helmholtz", coef_range=[3.0, 4]) == (3, 4)
    assert resolve_range("poisson", [2, 3]) == (2.0, 3.0)


BAD_REQUESTS = {
    "unknown-system": (dict(system="poison"),
                       "unknown system 'poison': choose one of poisson, advection_diffusion, helmholtz, mixed"),
    "unknown-level": (dict(shift="huge"),
                      "unknown shift level 'huge' for poisson: choose one of id, moderate, large or give [lo, hi]"),
    "lo-above-hi": (dict(shift=[5, 2]), "poisson range for e must have lo <= hi, got [5, 2]"),
    "e-below-one": (dict(coef_range=[0.5, 2]), "poisson anisotropy e must be >= 1, got [0.5, 2]"),
    "psi-zero": (dict(system="advection_diffusion", shift=[0, 1]),
                 "advection_diffusion ratio Psi must be > 0, got [0, 1]"),
    "omega-fraction": (dict(system="helmholtz", shift=[1.5, 3]),
                       "helmholtz omega range must be integers >= 1, got [1.5, 3]"),
    "not-a-range": (dict(shift=[1, 2, 3]), "poisson range for e must be two finite numbers [lo, hi], got [1, 2, 3]"),
    "shift-and-range": (dict(shift="id", coef_range=[1, 2]), "give either shift or coef_range, not both"),
    "mixed-range": (dict(system="mixed", shift=[1, 2]), "mixed takes a shift level name, one of id, moderate, large"),
    "mixed-alias": (dict(system="mixed", shift="advection"), "mixed takes a shift level name"),
    "odd-resolution": (dict(resolution=33), "resolution must be an even integer >= 8, got 33"),
    "tiny-resolution": (dict(resolution=6), "resolution must be an even integer >= 8, got 6"),
    "zero-n": (dict(n=0), "n must be an integer >= 1, got 0"),
    "float-n": (dict(n=2.0), "n must be an integer >= 1, got 2.0"),
    "negative-seed": (dict(seed=-1), "seed must be an integer >= 0, got -1"),
    "bad-dtype": (dict(dtype=np.int32), "dtype must be float32 or float64"),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS), ids=list(BAD_REQUESTS))
def test_bad_requests_raise_one_clear_line(case: str):
    overrides, message = BAD_REQUESTS[case]
    kwargs = {"system": "poisson", "n": 2, "resolution": 8, **overrides}
    with pytest.raises(DataError, match=re.escape(message)) as info:
        generate(kwargs.pop("system"), kwargs.pop("n"), **kwargs)
    assert "\n" not in str(info.value)
