"""Time-dependent solves on the periodic unit square, batched over samples, float64 throughout.

Initial conditions are given by their rfft2 spectra on the stored ``R x R`` grid (see :func:`sine_spectrum`)
and every solver returns frames ``(B, nt, R, R)`` at the times ``t`` (nt,):

- heat ``u_t = nu Lap u`` and advection ``u_t + a . grad u = 0``: exact Fourier multipliers,
  ``exp(-nu |2 pi k|^2 t)`` and the phase shift ``exp(-i (a . 2 pi k) t)`` (exact for fields without Nyquist
  content, as the generator's; a Nyquist mode, whose shift would not stay real, is left in place);
- burgers ``u_t + u (c . grad u) = nu Lap u``: pseudo-spectral on a grid ``refine`` times finer, the
  nonlinear term in conservative form ``c . grad(u^2 / 2)`` with 2/3-rule dealiasing, ETDRK4 (Cox & Matthews
  2002) with the diffusion integrated exactly, and a CFL-bounded step chosen per sample and per frame
  interval. Frames are restricted to the stored grid by spectral truncation. :func:`etdrk4_frames` is that
  scheme for any diagonal linear part and nonlinear term (``harness.pde.navier_stokes`` solves with it too).

Viscous Burgers obeys a maximum principle (max|u| never grows), so the step bounded by ``max|u|`` at the
start of a frame interval stays within the CFL bound over that interval. A sample's steps depend on its own
state only, so its trajectory does not depend on the other samples of the batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from harness.errors import DataError
from harness.pde import BURGERS_CFL
from harness.pde.fourier import advection_symbol, diffusion_symbol, irfft2, rfft2

# A step below this (in time units) means a blow-up or absurd coefficients: the solve stops with a DataError.
MIN_STEP = 1e-6
# Below this |z| the phi functions are summed from their Taylor series (the closed forms cancel).
_TAYLOR_BELOW = 1.0


def sine_spectrum(amp: np.ndarray, kx: np.ndarray, ky: np.ndarray, phase: np.ndarray, resolution: int) -> np.ndarray:
    """rfft2 spectra ``(B, R, R // 2 + 1)`` of ``u0 = sum_j amp_j sin(2 pi (kx_j x + ky_j y) + phase_j)``.

    Inputs are ``(B, J)``; wavenumbers are integers with ``1 <= ky < R / 2`` and ``|kx| < R / 2``, so each
    sine is one rfft2 entry, ``R^2 amp e^(i phase) / (2i)`` at ``(kx mod R, ky)``. Exact on any such grid.
    """
    b, n_modes = amp.shape
    if np.any(ky < 1) or np.any(ky >= resolution // 2) or np.any(np.abs(kx) >= resolution // 2):
        raise DataError(f"sine modes need 1 <= ky < R/2 and |kx| < R/2 on a {resolution}^2 grid")
    spectrum = np.zeros((b, resolution, resolution // 2 + 1), complex)
    rows = np.repeat(np.arange(b), n_modes)
    values = resolution**2 * amp * np.exp(1j * phase) / 2j
    np.add.at(spectrum, (rows, kx.ravel() % resolution, ky.ravel()), values.ravel())
    return spectrum


def resample_spectrum(u_hat: np.ndarray, size: int) -> np.ndarray:
    """The rfft2 spectra ``(..., n, n // 2 + 1)`` moved to a ``size x size`` grid: zero-padding when finer,
    spectral truncation when coarser. Modes with ``|k| < min(n, size) / 2`` are kept (Nyquist dropped), and
    scaled so that the field values are unchanged."""
    n = u_hat.shape[-2]
    half = min(n, size) // 2
    out = np.zeros((*u_hat.shape[:-2], size, size // 2 + 1), complex)
    out[..., :half, :half] = u_hat[..., :half, :half]
    out[..., size - half + 1:, :half] = u_hat[..., n - half + 1:, :half]
    return out * (size / n) ** 2


def _col(c: np.ndarray) -> np.ndarray:
    return np.asarray(c, dtype=np.float64)[:, None, None]


def _evolve(u0_hat: np.ndarray, rate: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Frames ``(B, nt, R, R)`` of ``u_hat(t) = u0_hat exp(rate t)``: only the modes that some sample of the
    batch carries are evolved (the generator's initial conditions have at most five)."""
    b, r = u0_hat.shape[0], u0_hat.shape[-2]
    flat = u0_hat.reshape(b, -1)
    live = np.flatnonzero(np.any(flat != 0, axis=0))
    frames = np.zeros((b, len(t), flat.shape[1]), complex)
    frames[:, :, live] = flat[:, None, live] * np.exp(rate.reshape(b, -1)[:, None, live] * t[None, :, None])
    return irfft2(frames.reshape(b, len(t), r, r // 2 + 1), (r, r))


def heat_frames(u0_hat: np.ndarray, nu: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Exact heat trajectories ``(B, nt, R, R)`` from spectra ``(B, R, R // 2 + 1)`` and ``nu`` (B,)."""
    r = u0_hat.shape[-2]
    return _evolve(u0_hat, -diffusion_symbol(nu, nu, np.zeros_like(nu), r), t)


def advection_frames(u0_hat: np.ndarray, ax: np.ndarray, ay: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Exact advection trajectories ``u0(x - a t)`` ``(B, nt, R, R)`` by a phase shift of each mode."""
    return _evolve(u0_hat, -1j * advection_symbol(ax, ay, u0_hat.shape[-2]), t)


def _phi(z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``phi_1, phi_2, phi_3`` of real ``z`` (phi_k(z) = sum_j z^j / (j + k)!), accurate for all z."""
    small = np.abs(z) < _TAYLOR_BELOW
    zs = np.where(small, z, 0.0)
    series = []
    for k in (1, 2, 3):
        term, total = np.full_like(z, 1.0 / math.factorial(k)), np.zeros_like(z)
        for j in range(1, 20):
            total += term
            term = term * zs / (j + k)
        series.append(total)
    zl = np.where(small, 1.0, z)
    phi1 = np.expm1(zl) / zl
    phi2 = (phi1 - 1.0) / zl
    phi3 = (phi2 - 0.5) / zl
    return tuple(np.where(small, s, p) for s, p in zip(series, (phi1, phi2, phi3), strict=True))


def _etdrk4_coefficients(lin: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, ...]:
    """Coefficients ``(E, E2, Q, f1, f2, f3)`` of ETDRK4 for the diagonal linear part ``lin`` (B, ...) and
    steps ``h`` (B,): ``E = e^(hL)``, ``E2 = e^(hL/2)``, ``Q = (h/2) phi_1(hL/2)``,
    ``f1 = h (phi_1 - 3 phi_2 + 4 phi_3)``, ``f2 = h (phi_2 - 2 phi_3)``, ``f3 = h (4 phi_3 - phi_2)``."""
    h = _col(h)
    z = h * lin
    p1, p2, p3 = _phi(z)
    half = _phi(z / 2)[0]
    return np.exp(z), np.exp(z / 2), h / 2 * half, h * (p1 - 3 * p2 + 4 * p3), h * (p2 - 2 * p3), h * (4 * p3 - p2)


def dealias_mask(fine: int) -> np.ndarray:
    """The 2/3 rule on a ``fine``^2 grid's rfft2 spectrum: True where ``|kx|, |ky| <= fine / 3`` (quadratic
    products of fields kept there are alias-free)."""
    kx_int = np.abs(np.fft.fftfreq(fine, 1.0 / fine))[:, None]
    ky_int = np.fft.rfftfreq(fine, 1.0 / fine)[None, :]
    return (kx_int <= fine / 3) & (ky_int <= fine / 3)


# N(v, rows): the nonlinear term of the samples ``rows`` (None: all) of the fine-grid spectra v.
Nonlinear = Callable[[np.ndarray, np.ndarray | None], np.ndarray]
# bound(v) -> (the largest stable step (B,), the Courant speed (B,) it came from, for messages).
StepBound = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Unstable:
    """How a solver names a sample whose solve failed: ``name`` the system, ``describe(i)`` sample i's
    coefficients, and the fixes to suggest for a step below the floor and for non-finite values."""

    name: str
    describe: Callable[[int], str]
    step_fix: str
    nonfinite_fix: str


def etdrk4_frames(u0_hat: np.ndarray, t: np.ndarray, refine: int, lin: np.ndarray, nonlinear: Nonlinear,
                  bound: StepBound, floor: float, unstable: Unstable) -> np.ndarray:
    """Frames ``(B, nt, R, R)`` at times ``t`` of ``v_t = lin v + N(v)`` on a ``refine`` times finer grid than
    the stored spectra ``u0_hat`` (B, R, R // 2 + 1) (zero-padded, so band-limited data are interpolated
    exactly, and dealiased by :func:`dealias_mask`): ETDRK4 with the diagonal ``lin`` (B, F, F // 2 + 1)
    integrated exactly, a step per sample and frame interval from ``bound`` at the interval's start, frames
    restricted to the stored grid by spectral truncation.

    Raises DataError naming the sample (``unstable``) if its step falls below ``floor`` or a frame has
    non-finite values.
    """
    b, r = u0_hat.shape[0], u0_hat.shape[-2]
    fine = r * refine
    v = resample_spectrum(u0_hat, fine) * dealias_mask(fine)
    frames = np.empty((b, len(t), r, r // 2 + 1), complex)
    frames[:, 0] = resample_spectrum(v, r)
    for j in range(1, len(t)):
        interval = t[j] - t[j - 1]
        # Steps per interval from the Courant bound; NaN (a blown-up state) and huge speeds give a tiny step.
        with np.errstate(divide="ignore", invalid="ignore"):
            largest, speed = bound(v)
            steps = np.ceil(interval / np.minimum(np.nan_to_num(largest, nan=0.0, posinf=np.inf), interval))
        h = interval / steps
        if np.any(h < floor):
            i = int(np.argmax(h < floor))
            raise DataError(f"{unstable.name} solve unstable at t={t[j - 1]:.4g}: step {h[i]:.3g} below {floor:g} "
                            f"(Courant speed {speed[i]:.4g}) for {unstable.describe(i)}; {unstable.step_fix}")
        coef = _etdrk4_coefficients(lin, h)
        with np.errstate(over="ignore", invalid="ignore"):  # a blow-up is reported below, once
            for s in range(int(steps.max())):
                act = np.flatnonzero(steps > s)  # samples with fewer steps in this interval are done
                if len(act) == b:
                    v = _etdrk4_step(v, coef, nonlinear, None)
                else:
                    v[act] = _etdrk4_step(v[act], tuple(c[act] for c in coef), nonlinear, act)
        frames[:, j] = resample_spectrum(v, r)
        bad = ~np.isfinite(frames[:, j]).all(axis=(1, 2))
        if bad.any():
            i = int(np.argmax(bad))
            raise DataError(f"{unstable.name} solve unstable at t={t[j]:.4g}: non-finite values for "
                            f"{unstable.describe(i)}; {unstable.nonfinite_fix}")
    return irfft2(frames, (r, r))


def burgers_frames(u0_hat: np.ndarray, nu: np.ndarray, cx: np.ndarray, cy: np.ndarray, t: np.ndarray, *,
                   refine: int, cfl: float = BURGERS_CFL) -> np.ndarray:
    """Burgers trajectories ``(B, nt, R, R)`` from spectra on the stored grid (:func:`etdrk4_frames`), with the
    Courant number ``(|cx| + |cy|) max|u| dt / dx = cfl``.

    Raises DataError naming the sample's coefficients if a frame has non-finite values or the CFL-bounded
    step falls below ``MIN_STEP``.
    """
    fine = u0_hat.shape[-2] * refine
    lin = -diffusion_symbol(nu, nu, np.zeros_like(nu), fine)
    # N(v) = -c . grad(u^2 / 2) in Fourier space: -(i/2) (c . 2 pi k) FFT(u^2), dealiased.
    nonlinear = -0.5j * advection_symbol(cx, cy, fine) * dealias_mask(fine)
    speed = np.abs(cx) + np.abs(cy)

    def burgers(w: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
        u = irfft2(w, (fine, fine))
        return (nonlinear if rows is None else nonlinear[rows]) * rfft2(u * u)

    def bound(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        u_max = np.abs(irfft2(w, (fine, fine))).max(axis=(1, 2))
        return cfl / (fine * speed * u_max), speed * u_max

    unstable = Unstable("burgers", lambda i: f"nu={nu[i]:.6g}, cx={cx[i]:.6g}, cy={cy[i]:.6g}",
                        "choose smaller |c| or smaller initial amplitudes", "choose a larger nu or smaller |c|")
    return etdrk4_frames(u0_hat, t, refine, lin, burgers, bound, MIN_STEP, unstable)


def _etdrk4_step(v: np.ndarray, coef: tuple[np.ndarray, ...], nonlinear: Nonlinear,
                 rows: np.ndarray | None) -> np.ndarray:
    """One ETDRK4 step (Cox & Matthews 2002, as written by Kassam & Trefethen 2005) of ``v_t = L v + N(v)`` for
    the samples ``rows`` (None: all) whose spectra are ``v``."""
    e, e2, q, f1, f2, f3 = coef

    def n_of(w: np.ndarray) -> np.ndarray:
        return nonlinear(w, rows)

    nv = n_of(v)
    a = e2 * v + q * nv
    na = n_of(a)
    b = e2 * v + q * na
    nb = n_of(b)
    c = e2 * a + q * (2 * nb - nv)
    return e * v + f1 * nv + 2 * f2 * (na + nb) + f3 * n_of(c)
