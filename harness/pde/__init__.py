"""PDE data: sum-of-Gaussians sources, three periodic systems solved exactly in Fourier space, caching.

Public API: :func:`generate` -> :class:`PDEData`, :func:`load_split` (cached train/val/test with training
statistics), :func:`save` / :func:`load`, :func:`resolve_range`, ``SYSTEMS``, ``CHANNELS``,
``COMMON_CHANNELS``, ``LAYOUT_VERSION``, ``SHIFT_LEVELS``, :func:`operator_symbol` and :func:`solve_channels`
(each system's operator from its channels), and the spectral derivatives :func:`spectral_grad`,
:func:`spectral_hessian`.
"""

from harness.pde.cache import load, load_split, resolve_cache_dir, save
from harness.pde.dataset import GENERATOR_VERSION, PDEData, compute_stats, generate
from harness.pde.solve import spectral_grad, spectral_hessian
from harness.pde.systems import (
    CHANNELS,
    COMMON_CHANNELS,
    LAYOUT_VERSION,
    SHIFT_LEVELS,
    SYSTEMS,
    operator_symbol,
    resolve_range,
    resolve_ranges,
    solve_channels,
)

__all__ = [
    "CHANNELS",
    "COMMON_CHANNELS",
    "GENERATOR_VERSION",
    "LAYOUT_VERSION",
    "PDEData",
    "SHIFT_LEVELS",
    "SYSTEMS",
    "compute_stats",
    "generate",
    "load",
    "load_split",
    "operator_symbol",
    "resolve_cache_dir",
    "resolve_range",
    "resolve_ranges",
    "save",
    "solve_channels",
    "spectral_grad",
    "spectral_hessian",
]
