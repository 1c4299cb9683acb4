"""What a job's training requires, torch-free so that `harness expand` checks it with the same functions.

The pretraining strategies by name (``harness.train.strategies`` implements them) and the masked strategy's
layout rule, called by ``Masked`` at run time and by the sweep checks for every point at expand.
"""

from __future__ import annotations

from harness.errors import HarnessError

# Pretraining strategies (Zhou et al. 2024); the sweep's `none` is training from scratch, no pretraining.
STRATEGIES = ("supervised", "masked", "derivative", "coefficient")


def masked_patches(ratio: float, patches: int) -> int:
    """How many of the ``patches`` x ``patches`` patches a ``ratio`` masks; raises unless at least one is masked
    and at most all of them (so ``mask_ratio`` must lie in (0, 1])."""
    n = patches * patches
    n_masked = round(ratio * n)
    if not (patches >= 1 and 1 <= n_masked <= n):
        raise HarnessError(f"masked pretraining needs mask_patches >= 1 and a mask_ratio that masks at least one "
                           f"and at most all of the {n} patches, but got mask_ratio={ratio}, mask_patches={patches}; "
                           "use a mask_ratio in (0, 1] such as 0.75")
    return n_masked


def check_patch_grid(patches: int, height: int, width: int) -> None:
    """Raise unless ``patches`` patches per side tile a ``height`` x ``width`` grid exactly."""
    if height % patches or width % patches:
        raise HarnessError(f"mask_patches={patches} must divide the grid {height}x{width}; choose a divisor "
                           f"such as {max(d for d in (1, 2, 4, 8) if height % d == 0 and width % d == 0)}")
