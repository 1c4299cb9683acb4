"""The three steady PDE systems: per-block sampling and the exact solve (their names, channels, shift levels and
ranges are ``harness.pde``'s rules).

SYS-1 poisson              -div(K grad u) = f,  K = 0.01 R(theta)^T diag(1, e) R(theta)
SYS-2 advection_diffusion  lam v.grad u - (1 - lam) 0.01 div(K grad u) = f,  K eigenvalues 1, U(1, 5)
SYS-3 helmholtz            -0.01 Laplacian u - omega u = f,  omega integer

All three are the one operator ``-div(K grad u) + v.grad u - omega u = f`` whose coefficients are the common
channels (k11, k22, k12, v1, v2, omega) (``COMMON_CHANNELS``): poisson (K), advection_diffusion
((1 - lam) 0.01 K, lam v), helmholtz (0.01 I, omega). Every sample is solved from its channels
(``operator_symbol``), so the channels hold the whole operator: scaling f and every channel by s leaves u
unchanged, and per-instance normalisation (``harness.train.normalise``) keeps each operator recoverable
(helmholtz's omega is the ratio of its omega and k11 channels). ``harness.pde.LAYOUT_VERSION`` numbers this
layout; a job's id includes it, so data and checkpoints of another layout are never mixed in.

The shifted coefficient is e (poisson), Psi = ||advection term|| / ||diffusion term|| (advection_diffusion)
and omega (helmholtz).
"""

from __future__ import annotations

import numpy as np

from harness.errors import DataError
from harness.pde import CHANNELS, COMMON_CHANNELS
from harness.pde.fourier import NU, advection_symbol, diffusion_symbol, rfft2, solve_with_symbol, wavenumbers
from harness.pde.steady_sources import SIGMA, build_sources, draw_amplitudes

AD_EIGEN_RANGE = (1.0, 5.0)
HELMHOLTZ_MAX_U = 2.0
HELMHOLTZ_MAX_ROUNDS = 100


def operator_symbol(coef: np.ndarray, resolution: int) -> np.ndarray:
    """Symbol of ``-div(K grad .) + v.grad . - omega`` for common-channel coefficients ``coef`` (B, 6):
    shape ``(B, R, R // 2 + 1)``, complex."""
    k11, k22, k12, v1, v2, omega = np.asarray(coef, dtype=np.float64).T
    return (diffusion_symbol(k11, k22, k12, resolution) + 1j * advection_symbol(v1, v2, resolution)
            - omega[:, None, None])


def solve_channels(f_hat: np.ndarray, coef: np.ndarray, resolution: int) -> np.ndarray:
    """Solve each sample's operator (its common channels ``coef`` (B, 6)) for sources with spectra ``f_hat``;
    float64 (B, R, R). Without a zero-order term (omega = 0) the zero mode of u is pinned to 0."""
    omega = np.asarray(coef)[:, COMMON_CHANNELS.index("omega")]
    if np.any(omega == 0) and not np.all(omega == 0):
        raise DataError("solve_channels needs every sample of a batch with omega = 0 or every one without")
    return solve_with_symbol(f_hat, operator_symbol(coef, resolution), resolution, pin_mean=bool(omega[0] == 0))


def helmholtz_channels(omega: np.ndarray) -> np.ndarray:
    """Common channels (B, 6) of ``-0.01 Laplacian - omega``: K = 0.01 I, no advection."""
    coef = np.zeros((len(omega), len(COMMON_CHANNELS)))
    coef[:, 0] = coef[:, 1] = NU
    coef[:, 5] = omega
    return coef


def _rotated(theta: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Entries (k11, k22, k12) of R(theta)^T diag(1, e) R(theta)."""
    c, s = np.cos(theta), np.sin(theta)
    return c**2 + e * s**2, s**2 + e * c**2, (e - 1.0) * c * s


def _lam_for_ratio(power: np.ndarray, a: np.ndarray, d: np.ndarray, psi: np.ndarray) -> np.ndarray:
    """Per-sample lam with ||lam a u|| / ||(1 - lam) d u|| = psi where u = f / (i lam a + (1 - lam) d).

    Inputs are (B, M) over the same M modes. With x = (lam / (1 - lam))^2 and P = |f_hat|^2 (Parseval
    weights), the squared ratio is N(x) / D(x), N = sum P x a^2 / (x a^2 + d^2), D = sum P d^2 / (x a^2 + d^2):
    N grows and D falls with x, so the ratio is monotone. Safeguarded Newton on log(N / D) in log x, all
    samples at once; a sample stops moving once converged, so its result does not depend on the batch.
    """
    # Row-contiguous copies: numpy sums strided rows in another order, which would make lam depend on B.
    power, a, d = (np.ascontiguousarray(v) for v in (power, a, d))
    a2, d2 = a**2, d**2
    pa2, pd2, pa2d2 = power * a2, power * d2, power * a2 * d2
    target = 2.0 * np.log(psi)
    # First guess from the small-x asymptote ratio^2 ~ x sum(P a^2 / d^2) / sum(P) (d > 0 off the zero mode).
    s = target + np.log(power.sum(axis=1)) - np.log((pa2 / np.where(d2 > 0, d2, 1.0)).sum(axis=1))
    lo, hi = np.full_like(s, -80.0), np.full_like(s, 80.0)
    s = np.clip(s, lo + 1, hi - 1)
    for _ in range(100):
        x = np.exp(s)
        inv = 1.0 / (x[:, None] * a2 + d2 + (d2 == 0))
        num, den = x * (pa2 * inv).sum(axis=1), (pd2 * inv).sum(axis=1)
        h = np.log(num) - np.log(den) - target
        active = np.abs(h) >= 1e-13
        if not active.any():
            break
        slope = x * (pa2d2 * inv**2).sum(axis=1) * (1.0 / num + 1.0 / den)
        hi, lo = np.where(h > 0, s, hi), np.where(h > 0, lo, s)
        step = s - h / slope
        step = np.where((step > lo) & (step < hi), step, 0.5 * (lo + hi))
        s = np.where(active, step, s)
    t = np.sqrt(np.exp(s))
    return t / (1.0 + t)


def _source_support(resolution: int) -> np.ndarray:
    """Modes (R, R // 2 + 1) where a source can carry power above 1e-32 of its peak: |f_hat|^2 falls off
    like exp(-sigma^2 |2 pi k|^2) for Gaussians of width sigma. Depends on the resolution only."""
    _, kx2, _, ky2 = wavenumbers(resolution, resolution)
    return SIGMA**2 * (kx2 + ky2) < np.log(1e32)


def _parseval_weights(resolution: int) -> np.ndarray:
    """Weights of rfft2 columns in a full-spectrum sum: 1 for ky = 0 and Nyquist, 2 otherwise."""
    w = np.full(resolution // 2 + 1, 2.0)
    w[0] = w[-1] = 1.0
    return w


def _nan(b: int, *shape: int) -> np.ndarray:
    return np.full((b, *shape), np.nan)


def _sources(amps: np.ndarray, resolution: int, dtype: np.dtype,
             zero_mean: bool) -> tuple[np.ndarray, np.ndarray]:
    """Sources in ``dtype`` and their float64 spectra."""
    f = build_sources(amps, resolution, dtype, zero_mean)
    return f, rfft2(f.astype(np.float64, copy=False))


def sample_block(system: str, rng: np.random.Generator, vf: np.ndarray, keep: int, lo: float, hi: float,
                 resolution: int, dtype: np.dtype) -> dict[str, np.ndarray]:
    """Draw a block of ``len(vf)`` samples of ``system`` from ``rng``, solve the first ``keep`` of them.

    The draws always cover the whole block, so sample j depends on (rng seed, j) only, never on ``keep``.
    Returns source, solution, coefficients (own layout), coef_common and the per-sample params
    (NaN where a system has no such parameter).
    """
    b = len(vf)
    amps = draw_amplitudes(rng, vf)
    params = {k: _nan(b) for k in ("e", "theta", "psi", "lam", "omega")}
    params["v"] = _nan(b, 2)
    common = np.zeros((keep, len(COMMON_CHANNELS)))
    if system == "poisson":
        params["e"], params["theta"] = rng.uniform(lo, hi, b), rng.uniform(0.0, 2 * np.pi, b)
        params = {k: v[:keep] for k, v in params.items()}
        common[:, :3] = np.stack(_rotated(params["theta"], params["e"]), axis=1) * NU
        f, f_hat = _sources(amps[:keep], resolution, dtype, zero_mean=True)
        u = solve_channels(f_hat, common, resolution)
    elif system == "advection_diffusion":
        params["e"], params["theta"] = rng.uniform(*AD_EIGEN_RANGE, b), rng.uniform(0.0, 2 * np.pi, b)
        phi, params["psi"] = rng.uniform(0.0, 2 * np.pi, b), rng.uniform(lo, hi, b)
        params["v"] = np.stack([np.cos(phi), np.sin(phi)], axis=1)
        params = {k: v[:keep] for k, v in params.items()}
        k = np.stack(_rotated(params["theta"], params["e"]), axis=1) * NU
        f, f_hat = _sources(amps[:keep], resolution, dtype, zero_mean=True)
        d = diffusion_symbol(*k.T, resolution)
        a = advection_symbol(*params["v"].T, resolution)
        power = np.abs(f_hat) ** 2 * _parseval_weights(resolution)
        power[:, 0, 0] = 0.0
        live = _source_support(resolution)
        lam = params["lam"] = _lam_for_ratio(power[:, live], a[:, live], d[:, live], params["psi"])
        common[:, :5] = np.concatenate([(1 - lam)[:, None] * k, lam[:, None] * params["v"]], 1)
        u = solve_channels(f_hat, common, resolution)
    else:
        f, u, omega = _helmholtz(rng, vf, amps, keep, int(lo), int(hi), resolution, dtype)
        params = {k: v[:keep] for k, v in params.items()}
        params["omega"] = omega.astype(np.float64)
        common = helmholtz_channels(params["omega"])
    coefficients = common[:, [COMMON_CHANNELS.index(c) for c in CHANNELS[system]]]
    return {"source": f, "solution": u.astype(dtype, copy=False), "coefficients": coefficients,
            "coef_common": common, **params}


def _too_large(u: np.ndarray) -> np.ndarray:
    return np.maximum(u.max(axis=(1, 2)), -u.min(axis=(1, 2))) > HELMHOLTZ_MAX_U


def _helmholtz(rng: np.random.Generator, vf: np.ndarray, amps: np.ndarray, keep: int, lo: int, hi: int,
               resolution: int, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Helmholtz samples with max|u| <= 2: rejected ones take the same slot of a freshly drawn block."""
    omega = rng.integers(lo, hi + 1, len(vf))[:keep]
    amps = amps[:keep]
    f, f_hat = _sources(amps, resolution, dtype, zero_mean=False)
    u = solve_channels(f_hat, helmholtz_channels(omega), resolution)
    todo = np.flatnonzero(_too_large(u))
    for _ in range(HELMHOLTZ_MAX_ROUNDS):
        if todo.size == 0:
            return f, u, omega
        amps[todo] = draw_amplitudes(rng, vf)[todo]
        omega[todo] = rng.integers(lo, hi + 1, len(vf))[todo]
        f[todo], f_hat = _sources(amps[todo], resolution, dtype, zero_mean=False)
        u[todo] = solve_channels(f_hat, helmholtz_channels(omega[todo]), resolution)
        todo = todo[_too_large(u[todo])]
    raise DataError(f"helmholtz: {todo.size} samples still have max|u| > {HELMHOLTZ_MAX_U} after "
                    f"{HELMHOLTZ_MAX_ROUNDS} redraws at omega in [{lo}, {hi}]: choose a range away from "
                    "resonance")
