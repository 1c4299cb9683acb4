"""Time-dependent systems: exact heat and advection, Burgers against an exact solution and in its order of
accuracy, conservation, the paper's initial conditions and ranges, prefix stability, bad requests."""

from __future__ import annotations

import re

import numpy as np
import pytest

from harness.errors import DataError
from harness.pde import TIME_CHANNELS, TIME_COEFS, TIME_SHIFT_LEVELS, TIME_SYSTEMS, resolve_time_ranges
from harness.pde.steady_dataset import BLOCK
from harness.pde.time_dataset import generate_time
from harness.pde.time_solve import advection_frames, heat_frames, sine_spectrum
from harness.pde.time_systems import solve_time

R = 16
X = np.arange(R) / R
XX, YY = np.meshgrid(X, X, indexing="ij")
# Sine modes of both signs of kx, one repeated, and an amplitude above the paper's.
AMP = np.array([[0.4, -0.3, 0.7, 0.2]])
KX, KY = np.array([[1, -2, 3, 1]]), np.array([[1, 3, 2, 1]])
PHASE = np.array([[0.3, 2.0, 4.5, 1.1]])


def _coefs(b: int = 1, **values: float) -> np.ndarray:
    """(b, 5) coefficients in TIME_COEFS order."""
    return np.tile([values.get(k, 0.0) for k in TIME_COEFS], (b, 1))


def _sines(t: float, shift=(0.0, 0.0), decay: float = 0.0) -> np.ndarray:
    """The closed form sum_j A_j exp(-decay |2 pi k_j|^2 t) sin(2 pi k_j . (x - shift t) + phi_j)."""
    total = np.zeros((R, R))
    for a, kx, ky, p in zip(AMP[0], KX[0], KY[0], PHASE[0], strict=True):
        k2 = (2 * np.pi) ** 2 * (kx**2 + ky**2)
        phase = 2 * np.pi * (kx * (XX - shift[0] * t) + ky * (YY - shift[1] * t)) + p
        total += a * np.exp(-decay * k2 * t) * np.sin(phase)
    return total


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


T = np.linspace(0.0, 2.0, 5)


def test_heat_and_advection_match_closed_forms_to_round_off():
    u0_hat = sine_spectrum(AMP, KX, KY, PHASE, R)
    heat = heat_frames(u0_hat, np.array([0.004]), T)[0]
    adv = advection_frames(u0_hat, np.array([0.7]), np.array([-1.3]), T)[0]
    for j, t in enumerate(T):
        np.testing.assert_allclose(heat[j], _sines(t, decay=0.004), atol=1e-13)
        np.testing.assert_allclose(adv[j], _sines(t, shift=(0.7, -1.3)), atol=1e-13)


@pytest.mark.parametrize("system", ["heat", "advection"])
def test_generated_heat_and_advection_are_exact(system: str):
    d = generate_time(system, 4, resolution=R, nt=6, dtype=np.float64)
    again = solve_time(system, d.u[:, 0], d.coef_common, d.t)
    np.testing.assert_allclose(d.u, again, atol=1e-13)
    # The initial condition: at most five sine modes with wavenumbers 1..3 (both axes), mean zero, |A| <= 0.5.
    spectrum = np.abs(np.fft.rfft2(d.u[:, 0])) / R**2
    k = np.abs(np.fft.fftfreq(R, 1 / R))[:, None] + 0 * np.arange(R // 2 + 1)
    live = (k >= 1) & (k <= 3) & (np.arange(R // 2 + 1) >= 1) & (np.arange(R // 2 + 1) <= 3)
    assert spectrum[:, ~live].max() < 1e-14 and ((spectrum > 1e-12).sum(axis=(1, 2)) <= 5).all()
    assert spectrum.max() <= 0.25 * 5 and np.abs(d.u[:, 0].mean(axis=(1, 2))).max() < 1e-15


def _cole_hopf(t: np.ndarray, nu: float, c: float, along_y: bool, r: int) -> np.ndarray:
    """The exact solution of u_t + c u u_s = nu u_ss (s = x or y) on an r x r grid: c u = -2 nu phi_s / phi
    with phi = 1.6 + exp(-4 pi^2 nu t) cos(2 pi s) solving the heat equation (Cole-Hopf)."""
    s = np.meshgrid(np.arange(r) / r, np.arange(r) / r, indexing="ij")[1 if along_y else 0][None]
    g = np.exp(-4 * np.pi**2 * nu * t)[:, None, None]
    return 4 * np.pi * nu * g * np.sin(2 * np.pi * s) / (c * (1.6 + g * np.cos(2 * np.pi * s)))


def test_burgers_matches_cole_hopf_along_either_axis():
    """A 1D solution embedded along x (then y) with the other velocity component arbitrary: stated tolerance
    1e-6 relative at 32^2 stored, refine 2 (measured ~2e-7: the initial field sampled on 32 points)."""
    r, nu, t = 32, 0.01, np.linspace(0.0, 1.0, 5)
    exact = np.stack([_cole_hopf(t, nu, 0.5, False, r), _cole_hopf(t, nu, 0.8, True, r)])
    coefs = np.array([[nu, 0, 0, 0.5, 0.3], [nu, 0, 0, -0.4, 0.8]])
    assert _rel(solve_time("burgers", exact[:, 0], coefs, t, refine=2), exact) < 1e-6


def test_burgers_converges_at_fourth_order_in_the_step():
    d = generate_time("burgers", 2, resolution=R, nt=3, horizon=0.5, dtype=np.float64)
    def run(cfl: float) -> np.ndarray:
        return solve_time("burgers", d.u[:, 0], d.coef_common, d.t, refine=2, cfl=cfl)
    reference = run(0.05)
    errors = [np.abs(run(cfl) - reference).max() for cfl in (1.0, 0.5, 0.25)]
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert errors[-1] > 1e-12 and ((orders > 3.5) & (orders < 4.6)).all(), (errors, orders)


def test_burgers_without_c_is_heat_and_conserves_the_mean():
    u0 = _sines(0.0) + 0.3  # a mean, which Burgers must carry along unchanged
    coefs = _coefs(nu=0.003)
    heat = solve_time("heat", u0[None], coefs, T)
    np.testing.assert_allclose(solve_time("burgers", u0[None], coefs, T), heat, atol=1e-13)
    burgers = solve_time("burgers", u0[None], _coefs(nu=0.003, cx=0.4, cy=-0.25), T)
    np.testing.assert_allclose(burgers.mean(axis=(2, 3)), 0.3, atol=1e-13)
    assert _rel(burgers, heat) > 1e-2  # the nonlinear term does act


def test_generated_burgers_is_resolved_and_stable():
    """Restricted frames barely change when the solve grid doubles (refine 4 vs 8 at the id level)."""
    a = generate_time("burgers", 3, resolution=R, nt=4, dtype=np.float64)
    b = generate_time("burgers", 3, resolution=R, nt=4, refine=8, dtype=np.float64)
    assert _rel(a.u, b.u) < 1e-4
    assert np.abs(a.u.mean(axis=(2, 3))).max() < 1e-13
    assert (np.abs(a.u[:, -1]).max(axis=(1, 2)) <= np.abs(a.u[:, 0]).max(axis=(1, 2)) + 1e-9).all()  # max principle


@pytest.mark.parametrize("system", [*TIME_SYSTEMS, "mixed_time"])
def test_prefix_stable_within_and_across_blocks(system: str):
    a = generate_time(system, 5, resolution=8, nt=3, horizon=0.2)
    b = generate_time(system, BLOCK + 3, resolution=8, nt=3, horizon=0.2)
    assert np.array_equal(a.u, b.u[:5])
    for k in (*TIME_COEFS, "system"):
        assert np.array_equal(a.params[k], b.params[k][:5])


def test_mixed_time_interleaves_and_coefficients_cover_their_levels():
    d = generate_time("mixed_time", 6, shift="ood", resolution=8, nt=3, horizon=0.2, seed=4)
    np.testing.assert_array_equal(d.params["system"], np.arange(6) % 3)
    burgers = generate_time("burgers", 2, shift="ood", resolution=8, nt=3, horizon=0.2, seed=4)
    np.testing.assert_array_equal(d.u[2::3], burgers.u)
    assert d.channels == TIME_COEFS and d.coefficients.shape == (6, 5)
    big = generate_time("advection", 300, resolution=8, nt=2, horizon=0.01, seed=5)
    lo, hi = TIME_SHIFT_LEVELS["advection"]["id"]["a"]
    assert lo == 0.05 and hi == 1.25  # the paper's [0.1, 2.5] on its side-2 domain
    for v in (big.params["ax"], big.params["ay"]):
        assert lo <= v.min() < lo + 0.05 and hi - 0.05 < v.max() <= hi
    assert not big.params["nu"].any() and not big.params["cx"].any()
    assert big.channels == TIME_CHANNELS["advection"] and big.coefficients.shape == (300, 2)


def test_explicit_ranges_fill_missing_parameters_from_id():
    ranges = resolve_time_ranges("burgers", {"c": [0.1, 0.2]})["burgers"]
    assert ranges == {"nu": TIME_SHIFT_LEVELS["burgers"]["id"]["nu"], "c": (0.1, 0.2)}
    d = generate_time("burgers", 4, shift={"c": [0.1, 0.2]}, resolution=8, nt=2, horizon=0.1)
    assert ((d.params["cx"] >= 0.1) & (d.params["cx"] <= 0.2)).all()


def test_unstable_burgers_names_its_coefficients():
    with pytest.raises(DataError, match=r"burgers solve unstable at t=0: step .* below 1e-06 .* cx=1e\+06"):
        generate_time("burgers", 2, shift={"c": [1e6, 1e6]}, resolution=8, nt=2)
    u0 = generate_time("burgers", 1, resolution=R, nt=2, horizon=0.01, dtype=np.float64).u[:, 0]
    with pytest.raises(DataError, match=r"non-finite values for nu=0.0001, cx=1, cy=1; choose a larger nu"):
        solve_time("burgers", u0, _coefs(nu=1e-4, cx=1, cy=1), np.linspace(0, 2, 9), refine=2, cfl=20)


BAD = {
    "unknown-system": (dict(system="heats"), "unknown time-dependent system 'heats': choose one of heat, "
                                             "advection, burgers, navier_stokes, mixed_time"),
    "unknown-level": (dict(shift="moderate"), "unknown shift level 'moderate' for heat: choose one of id, ood"),
    "unknown-param": (dict(shift={"c": [1, 2]}), "heat shift must be a level name (id, ood) or a mapping over nu"),
    "nu-zero": (dict(shift={"nu": [0, 1]}), "heat nu must be > 0, got [0, 1]"),
    "lo-above-hi": (dict(system="advection", shift={"a": [2, 1]}), "advection range for a must have lo <= hi"),
    "negative-velocity": (dict(system="advection", shift={"a": [-1, 1]}),
                          "advection velocity components a must be >= 0, got [-1, 1]"),
    "mixed-mapping": (dict(system="mixed_time", shift={"nu": [1, 2]}), "mixed_time takes a shift level name"),
    "one-frame": (dict(nt=1), "nt (frames per trajectory) must be an integer >= 2, got 1"),
    "no-horizon": (dict(horizon=0), "horizon must be a finite number of time units > 0, got 0"),
    "refine-zero": (dict(refine=0), "refine (Burgers and Navier-Stokes solve grid / stored grid) must be an "
                                      "integer in [1, 16]"),
    "odd-resolution": (dict(resolution=17), "resolution must be an even integer >= 8, got 17"),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_requests_raise_one_clear_line(case: str):
    overrides, message = BAD[case]
    kwargs = {"system": "heat", "resolution": 8, "nt": 2, **overrides}
    with pytest.raises(DataError, match=re.escape(message)) as info:
        generate_time(kwargs.pop("system"), 2, **kwargs)
    assert "\n" not in str(info.value)
