"""Neural operator models; each owns its size (parameters, FLOPs per sample) as small documented functions."""

from harness.models.fno import FNO, count_params, flops_per_sample

__all__ = ["FNO", "count_params", "flops_per_sample"]
