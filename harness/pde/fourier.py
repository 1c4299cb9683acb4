"""Fourier calculus on the periodic unit square: wavenumbers, derivatives and operator symbols.

Fields are arrays ``u[..., i, j]`` sampled at ``x = i / Rx``, ``y = j / Ry``. Transforms are ``rfft2`` over
the last two axes, so spectra have shape ``(..., Rx, Ry // 2 + 1)``. Every operator is the exact Fourier
multiplier of the continuous operator at the angular wavenumbers ``2 pi k``. Odd derivatives use ``k`` with
the Nyquist mode set to 0 and even ones keep ``k^2`` at Nyquist: this keeps every multiplier Hermitian, so
real fields stay real, and makes ``d/dx d/dy`` the composition of the two first derivatives.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

TWO_PI = 2.0 * np.pi
# Diffusion prefactor shared by the three systems (-0.01 div(K grad u), -0.01 Laplacian u).
NU = 0.01


@lru_cache(maxsize=16)
def wavenumbers(nx: int, ny: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Angular wavenumbers of an ``(nx, ny)`` grid's rfft2 spectrum, shaped to broadcast over it.

    Returns ``(kx, kx2, ky, ky2)``: first-derivative wavenumbers (Nyquist zeroed) and squared wavenumbers
    (Nyquist kept), ``kx*`` of shape ``(nx, 1)`` and ``ky*`` of shape ``(1, ny // 2 + 1)``; read-only float64.
    """
    kx = TWO_PI * np.fft.fftfreq(nx, d=1.0 / nx)
    ky = TWO_PI * np.fft.rfftfreq(ny, d=1.0 / ny)
    kx2, ky2 = kx**2, ky**2
    kx, ky = kx.copy(), ky.copy()
    if nx % 2 == 0:
        kx[nx // 2] = 0.0
    if ny % 2 == 0:
        ky[ny // 2] = 0.0
    out = (kx[:, None], kx2[:, None], ky[None, :], ky2[None, :])
    for a in out:
        a.setflags(write=False)
    return out


def rfft2(f: np.ndarray) -> np.ndarray:
    """Real 2D FFT over the last two axes (multithreaded). SciPy is imported here, by the solvers only: a job
    that reads cached data starts without it."""
    import scipy.fft as sfft

    return sfft.rfft2(f, workers=-1)


def irfft2(f_hat: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Inverse of :func:`rfft2` onto a grid of the given ``shape`` (multithreaded)."""
    import scipy.fft as sfft

    return sfft.irfft2(f_hat, s=shape, workers=-1)


def _col(c: np.ndarray) -> np.ndarray:
    return np.asarray(c, dtype=np.float64)[:, None, None]


def diffusion_symbol(k11: np.ndarray, k22: np.ndarray, k12: np.ndarray, resolution: int) -> np.ndarray:
    """Symbol of ``-div(K grad .)`` for a batch of symmetric tensors K: shape ``(B, R, R // 2 + 1)``, >= 0."""
    kx, kx2, ky, ky2 = wavenumbers(resolution, resolution)
    return _col(k11) * kx2 + _col(k22) * ky2 + 2.0 * _col(k12) * (kx * ky)


def advection_symbol(v1: np.ndarray, v2: np.ndarray, resolution: int) -> np.ndarray:
    """``a`` such that ``v . grad`` has symbol ``i a``: shape ``(B, R, R // 2 + 1)``."""
    kx, _, ky, _ = wavenumbers(resolution, resolution)
    return _col(v1) * kx + _col(v2) * ky


def solve_with_symbol(f_hat: np.ndarray, symbol: np.ndarray, resolution: int, pin_mean: bool) -> np.ndarray:
    """Solve ``L u = f`` given ``f``'s spectrum and ``L``'s (real or complex) symbol; float64 ``(B, R, R)``.

    With ``pin_mean`` the symbol vanishes at k = 0 and the zero mode of u is set to 0 (which also drops
    any mean of f, the compatibility condition of the periodic problem).
    """
    if pin_mean:
        symbol = symbol.copy()
        symbol[:, 0, 0] = 1.0
    inverse = 1.0 / symbol
    if pin_mean:
        inverse[:, 0, 0] = 0.0
    return irfft2(f_hat * inverse, (resolution, resolution))


def apply_multipliers(u, multipliers):
    """Apply Fourier multipliers to periodic fields ``u[..., x, y]`` (numpy arrays or torch tensors).

    ``multipliers(kx, kx2, ky, ky2)`` gets :func:`wavenumbers` of the grid (as tensors of u's dtype and device
    for torch) and returns a tuple of multipliers broadcasting over the rfft2 spectrum; returns the tuple of
    filtered fields, same type and dtype as ``u``.
    """
    nx, ny = u.shape[-2], u.shape[-1]
    ks = wavenumbers(nx, ny)
    if isinstance(u, np.ndarray):
        u_hat = rfft2(u)
        return tuple(irfft2(u_hat * m, (nx, ny)).astype(u.dtype, copy=False) for m in multipliers(*ks))
    import torch

    u_hat = torch.fft.rfft2(u)
    ks = tuple(torch.tensor(k, dtype=u.dtype, device=u.device) for k in ks)
    return tuple(torch.fft.irfft2(u_hat * m, s=(nx, ny)) for m in multipliers(*ks))


def spectral_grad(u):
    """``(du/dx, du/dy)`` of periodic fields ``u[..., x, y]`` on the unit square.

    Works on numpy arrays or torch tensors (any device, any batch shape), returning the same type and dtype.
    Exact (to round-off) for band-limited fields.
    """
    return apply_multipliers(u, lambda kx, kx2, ky, ky2: (1j * kx, 1j * ky))


def spectral_hessian(u):
    """``(d2u/dx2, d2u/dy2, d2u/dxdy)`` of periodic fields ``u[..., x, y]``; numpy or torch like
    :func:`spectral_grad`."""
    return apply_multipliers(u, lambda kx, kx2, ky, ky2: (-kx2, -ky2, -(kx * ky)))
