"""Samples as model tensors, normalised by their ``normalise`` rule (``harness.data.samples``).

``instance`` samples go through the same ``make_inputs`` as generated data (so generated data written to a
file gives the same tensors); ``channel`` samples have each field channel divided by its ``field_scale`` and
each coefficient column by its ``coef_scale`` (0 scales leave the channel 0), broadcast over the grid.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from harness.data.samples import Samples
from harness.train.normalise import ArrayLike, make_inputs


def _inverse(scales: list[float]) -> torch.Tensor:
    return torch.tensor([1.0 / s if s > 0 else 0.0 for s in scales], dtype=torch.float32)


def fits(stats: dict[str, Any] | None, samples: Samples) -> bool:
    """Whether ``stats`` (e.g. a pretrained model's) normalise ``samples``: the same rule and channel counts."""
    if stats is None or len(stats.get("coef_scale", ())) != samples.coefficients.shape[1]:
        return False
    if samples.normalise == "instance":
        return "median_source_norm" in stats
    return len(stats.get("field_scale", ())) == samples.fields.shape[1]


def pick_stats(pretrained: dict[str, Any] | None, train: Samples) -> dict[str, Any]:
    """The statistics a run normalises with: the pretrained model's where they fit the data (as fine-tuning on
    generated data does), else the training split's own."""
    if fits(pretrained, train):
        return pretrained
    assert train.stats is not None, "a training split carries its statistics"
    return train.stats


def inputs_of(fields: ArrayLike, coefficients: ArrayLike, stats: dict[str, Any], normalise: str) -> torch.Tensor:
    """Model inputs (n, F + K, R, R) float32 of fields (n, F, R, R) and coefficients (n, K) in physical units,
    normalised with ``stats`` by the ``normalise`` rule (``instance`` or ``channel``; the module docstring)."""
    if normalise == "instance":
        return make_inputs(fields[:, 0], coefficients, stats)
    fields = torch.as_tensor(fields, dtype=torch.float32) * _inverse(stats["field_scale"])[:, None, None]
    k = torch.as_tensor(coefficients, dtype=torch.float32) * _inverse(stats["coef_scale"])
    n, _, r1, r2 = fields.shape
    return torch.cat([fields, k[:, :, None, None].expand(n, k.shape[1], r1, r2)], dim=1)


def to_tensors(samples: Samples, stats: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """Model inputs (n, F + K, R, R) and targets (n, T, R, R), float32, normalised with ``stats``."""
    targets = torch.as_tensor(np.asarray(samples.targets), dtype=torch.float32)
    return inputs_of(samples.fields, samples.coefficients, stats, samples.normalise), targets
