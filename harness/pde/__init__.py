"""PDE data: sum-of-Gaussians sources, three periodic systems solved exactly in Fourier space, caching; and
the time-dependent systems of the second study (heat, advection, Burgers, Navier-Stokes) as trajectories.

Public API: :func:`generate` -> :class:`PDEData`, :func:`load_split` (cached train/val/test with training
statistics), :func:`save` / :func:`load`, :func:`resolve_range`, ``SYSTEMS``, ``CHANNELS``,
``COMMON_CHANNELS``, ``LAYOUT_VERSION``, ``SHIFT_LEVELS``, :func:`operator_symbol` and :func:`solve_channels`
(each system's operator from its channels), and the spectral derivatives :func:`spectral_grad`,
:func:`spectral_hessian`. Time-dependent: :func:`generate_time` -> :class:`TimeData`, :func:`load_time_split`,
:func:`resolve_time_ranges`, :func:`check_augment`, ``TIME_SYSTEMS``, ``TIME_MIXED``, ``TIME_CHANNELS``,
``TIME_COEFS``, ``TIME_SHIFT_LEVELS``, ``TIME_MIXED_LEVELS``, ``TIME_AUGMENTS``, :func:`solve_time` (one
system from given initial fields); ``NAVIER_STOKES``, ``ALL_TIME_SYSTEMS`` (the family and Navier-Stokes),
``NS_COEFS`` and :func:`model_coefs` (a time model's coefficient channels on a system's data).
"""

from harness.pde.cache import load, load_split, load_time_split, resolve_cache_dir, save
from harness.pde.dataset import GENERATOR_VERSION, PDEData, compute_stats, generate
from harness.pde.navier_stokes import NS_COEFS
from harness.pde.solve import spectral_grad, spectral_hessian
from harness.pde.systems import (
    CHANNELS,
    COMMON_CHANNELS,
    LAYOUT_VERSION,
    NAVIER_STOKES,
    SHIFT_LEVELS,
    SYSTEMS,
    TIME_MIXED,
    TIME_SYSTEMS,
    operator_symbol,
    resolve_range,
    resolve_ranges,
    solve_channels,
)
from harness.pde.time_dataset import TIME_GENERATOR_VERSION, TimeData, compute_time_stats, generate_time
from harness.pde.time_systems import (
    ALL_TIME_SYSTEMS,
    TIME_AUGMENTS,
    TIME_CHANNELS,
    TIME_COEFS,
    TIME_MIXED_LEVELS,
    TIME_SHIFT_LEVELS,
    augment_applies,
    check_augment,
    model_coefs,
    resolve_time_ranges,
    solve_time,
)

__all__ = [
    "ALL_TIME_SYSTEMS",
    "CHANNELS",
    "COMMON_CHANNELS",
    "GENERATOR_VERSION",
    "LAYOUT_VERSION",
    "NAVIER_STOKES",
    "NS_COEFS",
    "PDEData",
    "SHIFT_LEVELS",
    "SYSTEMS",
    "TIME_AUGMENTS",
    "TIME_CHANNELS",
    "TIME_COEFS",
    "TIME_GENERATOR_VERSION",
    "TIME_MIXED",
    "TIME_MIXED_LEVELS",
    "TIME_SHIFT_LEVELS",
    "TIME_SYSTEMS",
    "TimeData",
    "augment_applies",
    "check_augment",
    "compute_stats",
    "compute_time_stats",
    "generate",
    "generate_time",
    "load",
    "load_split",
    "load_time_split",
    "model_coefs",
    "operator_symbol",
    "resolve_cache_dir",
    "resolve_range",
    "resolve_ranges",
    "resolve_time_ranges",
    "save",
    "solve_channels",
    "solve_time",
    "spectral_grad",
    "spectral_hessian",
]
