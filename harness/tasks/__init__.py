"""The torch-free rules of the tasks: a job's task as sweep keys, and the rules a sweep point must keep
(`harness expand` checks them).

    task: steady         the steady systems: (source, coefficient channels) -> solution (the default)
    task: fixed_future   the time-dependent systems: the first `time_window` frames -> frame `target`
    task: next_step      the time-dependent systems: `time_window` frames -> the next frame, evaluated by
                         autoregressive rollout over the whole trajectory

Top-level keys (their defaults: ``harness.job.Point``): ``task``; ``time_window`` (frames in); ``target``
(fixed_future: the frame predicted, 0-based, negative counting from the end: -1 is the last frame); ``unroll``
(next_step: at most this many pushforward steps in training); ``nt`` (frames per trajectory) and ``horizon`` (time
units they span). A
steady job's config holds none of them (so steady job ids are what they were before tasks existed); a time
job's holds what its stage reads (:func:`task_keys`, a ``harness.job.Forecast``).

:func:`check_task` is every rule between these keys, the systems, the strategy and the augmentations, as
``TaskRuleError(key, message)``: the sweep turns it into one line naming the file and the point.

The rest of the package runs a task: ``harness.tasks.make.make_task(config)`` builds a job's ``Task``
(``harness.tasks.task``): ``SteadyTask`` (``harness.tasks.steady_task``) or ``ForecastTask``
(``harness.tasks.time_task``, with the shared trajectory objective in ``harness.tasks.trajectories`` and the
pretext tasks in ``harness.tasks.pretext``).
"""

from __future__ import annotations

from typing import Any

from harness.data import has_data
from harness.errors import HarnessError
from harness.job import STEADY_AUGMENTS, Downstream, Forecast, JobConfig, Point, Pretrain
from harness.pde import (
    ALL_TIME_SYSTEMS,
    DEFAULT_HORIZON,
    DEFAULT_REFINE,
    MIXED,
    MIXED_LEVELS,
    NAVIER_STOKES,
    SHIFT_LEVELS,
    SYSTEMS,
    TIME_COEFS,
    TIME_MIXED,
    TIME_MIXED_LEVELS,
    TIME_SHIFT_LEVELS,
    check_augment,
    check_decay,
    check_steps,
    check_time_request,
    resolve_ranges,
    resolve_time_ranges,
)
from harness.train import STEADY_IN_CHANNELS, STRATEGIES, TIME_ONLY_STRATEGIES, check_patch_grid, masked_patches

TASKS = ("steady", "fixed_future", "next_step")
TIME_TASKS = ("fixed_future", "next_step")
TIME_KEYS = ("time_window", "target", "unroll", "nt", "horizon")  # the keys only the time tasks read
DEFAULT = Point()  # every key's default
TIME_LEVELS = tuple(dict.fromkeys(level for levels in TIME_SHIFT_LEVELS.values() for level in levels))
# Pretext settings on trajectories (the paper's at 8 frames: temporal patches of 2, 4! = 24 orders to classify).
MASK_FRAMES = 2  # masked: frames per spatio-temporal patch
SORT_CHUNKS = 4  # sort_time: the window is cut into this many chunks of frames, shuffled, and the order classified
# jigsaw: blocks of frames (by harness.train.SORT_TILES^2 tiles: 8 pieces, as the paper's at 8 frames) and the
# orders of them classified
JIGSAW_BLOCKS, JIGSAW_CLASSES = 2, 64
DERIVATIVE_FRAMES = 3  # derivative: u_t of the first frame by a one-sided second-order difference over 3 frames


class TaskRuleError(HarnessError):
    """A sweep point whose task keys, systems, strategy or augmentations do not fit together; ``key`` names the
    config key to change."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def is_time(config: Point | JobConfig) -> bool:
    """Whether a point's or a job's config is a time-dependent task."""
    return config.task in TIME_TASKS


def target_frame(target: int, nt: int) -> int:
    """The 0-based frame index ``target`` names in trajectories of ``nt`` frames (negative: from the end)."""
    return target + nt if target < 0 else target


def task_keys(point: Point, *, pretext: bool = False) -> Forecast | None:
    """The task keys a stage's job config holds: none for steady; for a time task ``task``, ``time_window``,
    ``nt``, ``horizon``, and the task's own (``target`` or ``unroll``) unless the stage is a pretext pretraining,
    which never reads them (so one pretext pretraining serves every target and unroll)."""
    if not is_time(point):
        return None
    fixed = point.task == "fixed_future"
    return Forecast(point.task, point.time_window, point.nt, point.horizon,
                    target=point.target if fixed and not pretext else None,
                    unroll=point.unroll if not fixed and not pretext else None)


def window_channels(window: int, coefs: int = len(TIME_COEFS)) -> int:
    """Input channels of a time task's model: ``window`` frames, then one channel per coefficient (``coefs``:
    the five of heat, advection and Burgers unless given; ``harness.pde.model_coefs``)."""
    return window + coefs


def resident_sizes(config: Point) -> tuple[int, int]:
    """(model input channels, floats one resident training sample holds) of a point's task: steady, the
    normalised input and its solution at ``resolution``; a time task, ``window_channels`` in, and the trajectory
    of ``nt`` frames with its coefficients resident (the objectives cut the windows on the device); counted with
    the five coefficients of heat, advection and Burgers, a bound for navier_stokes' two."""
    cells = config.resolution ** 2
    if not is_time(config):
        return STEADY_IN_CHANNELS, (STEADY_IN_CHANNELS + 1) * cells
    return window_channels(config.time_window), config.nt * cells + len(TIME_COEFS)


def _parts(config: Point, stages: list[str]) -> dict[str, Pretrain | Downstream]:
    """The data parts the stages read: ``pretrain`` for a pretraining, ``downstream`` for any other stage."""
    parts: dict[str, Pretrain | Downstream] = {"pretrain": config.pretrain} if "pretrain" in stages else {}
    if any(stage != "pretrain" for stage in stages):
        parts["downstream"] = config.downstream
    return parts


def _trained(config: Point, stages: list[str]) -> dict[str, tuple[str, Pretrain | Downstream]]:
    """Train-settings key -> (its augmentation, the data part it augments) for every stage that trains."""
    out: dict[str, tuple[str, Pretrain | Downstream]] = {}
    if "pretrain" in stages:
        out["pretrain.train.augment"] = (config.pretrain.train.augment, config.pretrain)
    if any(stage in ("finetune", "scratch") for stage in stages):
        out["train.augment"] = (config.train.augment, config.downstream)
    return out


def check_task(config: Point, stages: list[str]) -> None:
    """Raise ``TaskRuleError`` unless the resolved ``config`` of a point can run as its ``stages`` (the task
    itself is one of ``TASKS``: the schema's choices)."""
    if config.task == "steady":
        _check_steady(config, stages)
    else:
        _check_time(config, stages)


def _check_steady(config: Point, stages: list[str]) -> None:
    for key in TIME_KEYS:
        if getattr(config, key) != getattr(DEFAULT, key):
            raise TaskRuleError(key, f"{getattr(config, key)!r} applies to the time-dependent tasks "
                                     f"({', '.join(TIME_TASKS)}), not task steady: set task, or remove {key}")
    for name, part in _parts(config, stages).items():
        if has_data(part):
            continue  # its samples come from files (checked by harness.data.parts): no system's ranges apply
        system = part.system
        if system not in (*SYSTEMS, MIXED):
            raise TaskRuleError(f"{name}.system", f"{system} is time-dependent but task is steady: set task: "
                                                  f"{' or '.join(TIME_TASKS)}, or choose one of {', '.join(SYSTEMS)}")
        levels = ", ".join(SHIFT_LEVELS.get(system, MIXED_LEVELS))
        fix = f"use a range where that holds, or a {system} level: {levels}" if isinstance(part.shift, list) else ""
        _data(f"{name}.shift", resolve_ranges, system, part.shift, fix=fix)
    strategy = config.pretrain.strategy
    if "pretrain" in stages and strategy in TIME_ONLY_STRATEGIES:
        steady = [*(s for s in STRATEGIES if s not in TIME_ONLY_STRATEGIES), "none"]
        raise TaskRuleError("pretrain.strategy", f"{strategy} needs a time axis, which task steady has not: choose "
                                                 f"one of {', '.join(steady)}")
    if "pretrain" in stages:
        _check_masked(config, blocks=1)
    for key, (augment, part) in _trained(config, stages).items():
        if augment not in STEADY_AUGMENTS:
            raise TaskRuleError(key, f"{augment} is a symmetry of the time-dependent advection and Burgers equations, "
                                     f"not of {part.system}: choose one of {', '.join(STEADY_AUGMENTS)}")


def _check_time(config: Point, stages: list[str]) -> None:
    _check_frames(config)
    task, window = config.task, config.time_window
    for name, part in _parts(config, stages).items():
        if has_data(part):
            continue  # trajectories from files (checked by harness.data.parts): no system's levels apply
        system, shift = part.system, part.shift
        systems = (*ALL_TIME_SYSTEMS, TIME_MIXED) if name == "pretrain" else ALL_TIME_SYSTEMS
        if system not in systems:
            raise TaskRuleError(f"{name}.system", f"{system} is not time-dependent but task is {task}: choose one of "
                                                  f"{', '.join(systems)}, or set task: steady")
        if not isinstance(shift, str):
            levels = TIME_SHIFT_LEVELS.get(system, TIME_MIXED_LEVELS)
            raise TaskRuleError(f"{name}.shift", f"{shift} is a range, but the time-dependent systems take a named "
                                                 f"level: {', '.join(levels)} for {system}")
        ranges = _data(f"{name}.shift", resolve_time_ranges, system, shift)
        _data("horizon", check_decay, system, shift, config.horizon)
        if system == NAVIER_STOKES:  # its CFL-bounded step above the floor, as its data request checks
            _data("horizon", check_steps, ranges[system], config.resolution, config.horizon, DEFAULT_REFINE)
    if "pretrain" in stages:
        _check_pretext(config, window)
    for key, (augment, part) in _trained(config, stages).items():
        # A file may hold any of the three equations (or Navier-Stokes, labelled so): each sample is augmented
        # where that is its symmetry.
        system = TIME_MIXED if has_data(part) and part.system != NAVIER_STOKES else part.system
        _data(key, check_augment, system, augment)


def _check_frames(config: Point) -> None:
    """The trajectory's frames, the input window, the target frame and the unroll fit together."""
    task, window, nt, unroll = config.task, config.time_window, config.nt, config.unroll
    _data("nt", check_time_request, nt, DEFAULT_HORIZON, DEFAULT_REFINE)  # as the data request checks them
    _data("horizon", check_time_request, nt, config.horizon, DEFAULT_REFINE)
    if not 1 <= window < nt:
        raise TaskRuleError("time_window", f"{window} frames do not fit trajectories of nt {nt} frames, where a frame "
                                           f"must follow the input window: choose 1..{nt - 1}")
    if task == "fixed_future":
        target = target_frame(config.target, nt)
        if not window <= target < nt:
            raise TaskRuleError("target", f"frame {config.target} is not a frame after the input window of "
                                          f"{window} in trajectories of {nt}: choose {window}..{nt - 1} (or "
                                          f"-{nt - window}..-1, counted from the end)")
        if unroll:
            raise TaskRuleError("unroll", f"{unroll} pushforward steps apply to task next_step, not fixed_future: "
                                          "remove unroll")
    else:
        if config.target != DEFAULT.target:
            raise TaskRuleError("target", f"{config.target} applies to task fixed_future; next_step predicts every "
                                          "next frame and is rolled out over the trajectory: remove target")
        if not 0 <= unroll <= nt - window - 1:
            raise TaskRuleError("unroll", f"{unroll} pushforward steps do not fit: a training window of {window} "
                                          f"frames, the steps and the frame predicted must fit the nt {nt} frames, so "
                                          f"choose 0..{nt - window - 1}")


def _check_pretext(config: Point, window: int) -> None:
    strategy = config.pretrain.strategy
    rule = {"masked": (window % MASK_FRAMES == 0, f"an even time_window (patches of {MASK_FRAMES} frames)"),
            "derivative": (window >= DERIVATIVE_FRAMES, f"time_window >= {DERIVATIVE_FRAMES} (u_t by a one-sided "
                                                        "second-order difference)"),
            "sort_time": (window % SORT_CHUNKS == 0, f"a time_window divisible by {SORT_CHUNKS} (it sorts "
                                                     f"{SORT_CHUNKS} chunks of frames)"),
            "jigsaw": (window % JIGSAW_BLOCKS == 0, f"a time_window divisible by {JIGSAW_BLOCKS} (its pieces are "
                                                    f"{JIGSAW_BLOCKS} blocks of frames by tiles)"),
            "binary": (window >= 2, "time_window >= 2 (it tells frames in order from frames shuffled)")}.get(strategy)
    if rule is not None and not rule[0]:
        raise TaskRuleError("time_window", f"{window} frames do not fit pretrain.strategy {strategy}, which needs "
                                           f"{rule[1]}")
    batch = config.pretrain.train.batch_size
    if strategy == "picl" and batch < 2:
        raise TaskRuleError("pretrain.train.batch_size", f"{batch} window per batch gives pretrain.strategy picl no "
                                                         "pair of windows to contrast: choose a batch_size >= 2")
    _check_masked(config, blocks=window // MASK_FRAMES)


def _check_masked(config: Point, blocks: int) -> None:
    """The masked strategy's ratio and patch grid (``harness.train``, as ``Masked`` and ``TimeMasked``
    apply them) on inputs of ``blocks`` temporal blocks."""
    pretrain, res = config.pretrain, config.resolution
    if pretrain.strategy == "masked":
        _data("pretrain.mask_ratio", masked_patches, pretrain.mask_ratio, pretrain.mask_patches, blocks)
        _data("pretrain.mask_patches", check_patch_grid, pretrain.mask_patches, res, res)


def _data(key: str, check: Any, *args: Any, fix: str = "") -> Any:
    """``check(*args)`` (returned), its HarnessError (a bad level, an augmentation that is no symmetry, ...) as
    a TaskRuleError at ``key``, with ``fix`` appended if any."""
    try:
        return check(*args)
    except HarnessError as exc:
        raise TaskRuleError(key, f"{exc}; {fix}" if fix else str(exc)) from None
