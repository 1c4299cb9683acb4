"""Per-instance input normalisation of Subramanian et al. (2023): 10 f and 10 K give the same input.

Every sample's whole input (source and constant coefficient channels) is divided by
``s_i = ||f_i|| / stats["median_source_norm"]``, with ``||f|| = (sum f^2 dx dy)^(1/2)`` on the unit square
(the RMS of f over the grid); the coefficient channels are then divided by their median scales
``stats["coef_scale"][c]`` (a channel whose scale is 0, unused by the system, stays 0). The target is not
rescaled. The statistics come from the training set (``harness.pde.steady_dataset.compute_stats``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from harness.errors import HarnessError

ArrayLike = np.ndarray | torch.Tensor


def _as_float_tensor(a: ArrayLike) -> torch.Tensor:
    return torch.as_tensor(a, dtype=torch.float32)


def _instance_scale(f: torch.Tensor, median_source_norm: float) -> torch.Tensor:
    """``s_i = ||f_i|| / median_source_norm`` (1 for an all-zero source, which has nothing to scale)."""
    norm = f.square().mean(dim=(-2, -1)).sqrt()
    return torch.where(norm > 0, norm, torch.ones_like(norm)) / median_source_norm


def make_inputs(source: ArrayLike, coef: ArrayLike, stats: dict[str, Any]) -> torch.Tensor:
    """FNO inputs (n, 1 + C, R, R) float32 from sources (n, R, R) and constant coefficients (n, C).

    Channel 0 is the source, channels 1..C the coefficients broadcast over the grid; see the module
    docstring for the scaling. ``stats`` holds ``median_source_norm`` (float) and ``coef_scale`` (C floats).
    """
    f, k = _as_float_tensor(source), _as_float_tensor(coef)
    coef_scale: Sequence[float] = stats["coef_scale"]
    if f.ndim != 3 or k.ndim != 2 or k.shape[0] != f.shape[0] or k.shape[1] != len(coef_scale):
        raise HarnessError(
            "make_inputs needs source (n, R, R), coef (n, C) and C = len(stats['coef_scale']), but got "
            f"source {tuple(f.shape)}, coef {tuple(k.shape)}, {len(coef_scale)} coefficient scales"
        )
    scale = _instance_scale(f, float(stats["median_source_norm"]))
    inverse_channel_scale = torch.tensor([1.0 / c if c > 0 else 0.0 for c in coef_scale], dtype=torch.float32)
    k = k / scale[:, None] * inverse_channel_scale
    n, c, r1, r2 = k.shape[0], k.shape[1], f.shape[1], f.shape[2]
    return torch.cat([(f / scale[:, None, None])[:, None], k[:, :, None, None].expand(n, c, r1, r2)], dim=1)


def make_targets(solution: ArrayLike) -> torch.Tensor:
    """Training targets (n, 1, R, R) float32 from solutions (n, R, R); not rescaled."""
    return _as_float_tensor(solution)[:, None]
