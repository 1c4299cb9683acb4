"""The torch-free rules of training: what a job's training requires, so that `harness expand` checks it with
the same functions.

The steady models' input channels, the pretraining strategies by name (``harness.train.strategies``
implements the steady ones, ``harness.tasks.pretext`` those on trajectories) and the masked strategies' layout
rules, called by ``Masked`` and ``TimeMasked`` at run time and by the task rules
(``harness.tasks.check_task``) for every point at expand.

The rest of the package trains (torch): input normalisation (``normalise``), what is learnt (``objective``),
the one training loop (``loop``) and its run's records (``state``), several runs of one shape trained as one
program (``fused``), pretraining strategies (``strategies``), augmentation (``steady_augment``,
``time_augment``), atomic checkpoints (``checkpoint``), data-parallel ranks (``distributed``), streamed training
sets (``stream``), signals (``signals``) and the timing of passes (``timing``).
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.errors import HarnessError
from harness.pde import COMMON_CHANNELS

STEADY_IN_CHANNELS = 1 + len(COMMON_CHANNELS)  # the steady models' input: source + common coefficient channels
# Pretraining strategies (Zhou et al. 2024); the sweep's `none` is training from scratch, no pretraining.
STRATEGIES = ("supervised", "masked", "derivative", "coefficient", "sort_time", "sort_space", "jigsaw", "binary",
              "picl")
# They need a time axis (picl: its similarity is that of the time-dependent equations' coefficients).
TIME_ONLY_STRATEGIES = ("sort_time", "jigsaw", "binary", "picl")
# sort_space and jigsaw cut the grid into SORT_TILES x SORT_TILES tiles (the paper's 16-point patches of its
# 32-point grid: 2 x 2); every grid fits (resolutions are even).
SORT_TILES = 2
# The derivative strategies' outputs (u_t or the solution's gradient, then first and second derivatives) and the
# steady coefficient strategy's inputs (source and solution): channels a pretext model differs by.
DERIVATIVE_OUTPUTS, COEFFICIENT_IN_CHANNELS = 5, 2
# Samples per forward pass of an evaluation (validation and the steady test) and of a test rollout
# (``harness.train.loop.evaluate``, ``harness.tasks.time_task.rollout``; the sweep estimate prices them).
EVAL_BATCH, ROLLOUT_BATCH = 256, 64


def masked_patches(ratio: float, patches: int, blocks: int = 1) -> int:
    """How many of the ``blocks`` x ``patches`` x ``patches`` patches a ``ratio`` masks (``blocks``: the
    temporal blocks of a window of frames, 1 for a steady input); raises unless at least one is masked and at
    most all of them (so ``mask_ratio`` must lie in (0, 1])."""
    n = blocks * patches * patches
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


# The test metrics every job records (``harness.train.metrics``), name -> how figures label it: summary columns
# ``test_<name>``, and a rollout's per-frame ``rollout_step_<name>``; ``harness report --metric`` fits one of them.
METRICS = {"rel_l2": "relative L2", "nrmse": "nRMSE", "max_err": "max abs error", "frmse_low": "fRMSE, low k",
           "frmse_mid": "fRMSE, middle k", "frmse_high": "fRMSE, high k"}
DEFAULT_METRIC = "rel_l2"


@dataclass(frozen=True)
class Rate:
    """What a job of one kernel costs on a device: fixed seconds per train step and per forward pass, seconds per
    FLOP of each, and fixed seconds per job besides its passes (data from the cache, model, checkpoint and result
    files); ``harness.job.calibration.calibrate_device`` measures them."""

    step_s: float
    train_s_per_flop: float
    pass_s: float
    forward_s_per_flop: float
    job_s: float = 0.0
    eval_s: float = 0.0  # fixed seconds per evaluation besides its passes (progress file, best weights, hooks)
