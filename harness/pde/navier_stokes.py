"""The ``navier_stokes`` system: 2D incompressible flow in vorticity form on the periodic unit square,

    w_t + u . grad w = visc Lap w + amp g,     g(x, y) = sin(2 pi (x + y)) + cos(2 pi (x + y)),
    u = (psi_y, -psi_x),     -Lap psi = w     (so w = v_x - u_y and div u = 0),

the problem of the FNO paper's Navier-Stokes data (Li et al. 2021, forcing 0.1 g: amp = 0.1 there) with the
viscosity ``visc`` and the forcing amplitude ``amp`` drawn per sample, as in the ``ns`` data Zhou et al. (2024)
fine-tune on (their files store ``visc`` and ``amp``; their reader, ``common/datasets.py`` of
anthonyzhou-1/pretraining_pdes, tells it from heat/advection/Burgers by amp != 0). Their generator is not
public; the same author's anthonyzhou-1/mae-pdes names the FNO generator as its source and gives the ranges
(``common/datasets.py``, ``get_variables('ns')``): visc in [1e-9, 1e-5], amp in [1e-3, 1e-2], our ``id``.
``ood`` and the finer ``ood_visc`` / ``ood_amp`` are ours (the paper has no out-of-distribution NS): visc one
decade above id, [1e-5, 1e-4] (at 1e-4 the smallest stored scales decay by e^-2 over two time units; below
1e-5 diffusion is negligible there), and amp up to five times id's top, [1e-2, 5e-2]. Draws are uniform. The
levels, the coefficient names and the step bound are rules (``harness.pde``), checked at expand.

Initial vorticity: the FNO generator's Gaussian random field (``GaussianRF(2, s, alpha=2.5, tau=7)`` of its
``ns_2d.py``): each mode k != 0 of the full FFT grid gets ``sqrt(2) sigma (4 pi^2 |k|^2 + tau^2)^(-alpha/2)
(a + i b)``, a, b ~ N(0, 1), sigma = tau^(alpha - 1), and w0 is the real part (mean zero, RMS ~ 0.26, speeds
max|u| + max|v| ~ 0.1). Drawn band-limited on the stored R^2 grid (|kx|, |ky| < R / 2; the FNO draws on its
solve grid): the modes left out hold 0.04 % of the variance at R = 32 (0.4 % at 16). Not the sine sums of
heat, advection and Burgers: Zhou's NS data come from this generator.

Solve (:func:`navier_stokes_frames`): pseudo-spectral on a grid ``refine`` times finer, u . grad w from the
spectral u, v, w_x, w_y with the 2/3 rule, ETDRK4 with the diffusion integrated exactly and the forcing in the
nonlinear term (ETDRK4 integrates a constant term exactly), the step per sample and frame interval from the
Courant number ``(max|u| + max|v|) dt / dx = cfl`` at the interval's start (``harness.pde.time_solve``).
Unlike Burgers no maximum principle bounds the velocity; the Courant number 0.5 leaves it a factor ~2.6 to grow
within a frame interval before ETDRK4's stability limit (~1.3). A step below ``horizon / MAX_STEPS`` is refused:
at request time (and so at expand) from an a-priori speed bound (``harness.pde.check_steps``), at solve time from the
sample's own speed (naming its coefficients).
"""

from __future__ import annotations

import math

import numpy as np

from harness.pde import BURGERS_CFL, MAX_STEPS, NS_COEFS, Ranges, grf_amplitudes
from harness.pde.fourier import irfft2, rfft2, wavenumbers
from harness.pde.time_solve import Unstable, dealias_mask, etdrk4_frames, sine_spectrum


def grf_spectrum(rng: np.random.Generator, size: int, resolution: int) -> np.ndarray:
    """rfft2 spectra ``(size, R, R // 2 + 1)`` of ``size`` initial vorticities drawn from ``rng`` (module
    docstring): ``w0 = Re sum_k c_k exp(2 pi i k . x)``, ``c_k = amplitude_k (a + i b)``."""
    a, b = rng.standard_normal((2, size, resolution, resolution))
    c = grf_amplitudes(resolution) * (a + 1j * b)
    return rfft2(np.fft.ifft2(c * resolution**2).real)


def forcing_spectrum(resolution: int) -> np.ndarray:
    """The rfft2 spectrum ``(R, R // 2 + 1)`` of g = sin(2 pi (x + y)) + cos(2 pi (x + y)) = sqrt(2) sin(2 pi
    (x + y) + pi / 4), exact."""
    one = np.ones((1, 1))
    return sine_spectrum(math.sqrt(2.0) * one, one.astype(int), one.astype(int), math.pi / 4 * one, resolution)[0]


def velocity(w_hat: np.ndarray, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """The velocity ``(u, v)`` (..., R, R) of vorticities given by their rfft2 spectra (..., R, R // 2 + 1):
    ``u = psi_y``, ``v = -psi_x`` with ``-Lap psi = w`` (the mean of w induces none)."""
    kx, kx2, ky, ky2 = wavenumbers(resolution, resolution)
    k2 = kx2 + ky2
    psi = w_hat * np.divide(1.0, k2, out=np.zeros_like(k2), where=k2 > 0)
    return irfft2(1j * ky * psi, (resolution, resolution)), irfft2(-1j * kx * psi, (resolution, resolution))


def navier_stokes_frames(w0_hat: np.ndarray, visc: np.ndarray, amp: np.ndarray, t: np.ndarray, *, refine: int,
                         cfl: float = BURGERS_CFL) -> np.ndarray:
    """Vorticity trajectories ``(B, nt, R, R)`` at times ``t`` (``t[0]`` the initial time) from spectra
    ``w0_hat`` (B, R, R // 2 + 1) on the stored grid, with ``visc`` and ``amp`` (B,) (amp = 0: unforced), solved
    on a ``refine`` times finer grid (module docstring; Courant number ``cfl``, the Burgers solver's by
    default: the same scheme and stability limit).

    Raises DataError naming the sample's coefficients if its step falls below ``(t[-1] - t[0]) / MAX_STEPS``
    or a frame has non-finite values.
    """
    fine = w0_hat.shape[-2] * refine
    visc, amp = (np.asarray(c, dtype=np.float64) for c in (visc, amp))
    kx, kx2, ky, ky2 = wavenumbers(fine, fine)
    lin = -visc[:, None, None] * (kx2 + ky2)
    keep = dealias_mask(fine)
    forcing = amp[:, None, None] * forcing_spectrum(fine)
    shape = (fine, fine)

    def advection(w: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
        u, v = velocity(w, fine)
        w_x, w_y = irfft2(1j * kx * w, shape), irfft2(1j * ky * w, shape)
        return (forcing if rows is None else forcing[rows]) - keep * rfft2(u * w_x + v * w_y)

    def bound(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        u, v = velocity(w, fine)
        speed = np.abs(u).max(axis=(1, 2)) + np.abs(v).max(axis=(1, 2))
        return cfl / (fine * speed), speed

    unstable = Unstable("navier_stokes", lambda i: f"visc={visc[i]:.6g}, amp={amp[i]:.6g}",
                        "choose a smaller amp, a shorter horizon or a coarser resolution",
                        "choose a larger visc or a smaller amp")
    floor = float(t[-1] - t[0]) / MAX_STEPS
    return etdrk4_frames(w0_hat, t, refine, lin, advection, bound, floor, unstable)


def sample_ns_block(rng: np.random.Generator, size: int, keep: int, ranges: Ranges, t: np.ndarray,
                    resolution: int, refine: int, dtype: type) -> dict[str, np.ndarray]:
    """Draw ``size`` initial vorticities and (visc, amp) from ``rng``, solve the first ``keep``: ``u`` (keep,
    nt, R, R) in ``dtype`` and ``visc``, ``amp`` (keep,) float64 (the draws cover all ``size`` samples, so
    sample j depends on (rng seed, j) only)."""
    coefs = {name: rng.uniform(*ranges[name], size)[:keep] for name in NS_COEFS}
    w0_hat = grf_spectrum(rng, size, resolution)[:keep]
    u = navier_stokes_frames(w0_hat, coefs["visc"], coefs["amp"], t, refine=refine)
    return {"u": u.astype(dtype, copy=False), **coefs}
