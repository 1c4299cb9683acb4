"""What must hold at each matrix point, checked at expand with the functions the jobs call at run time.

A job enforces these rules when it runs; `expand` calls the same functions for every point first, so a bad
sweep fails before anything is written or queued (on Slurm: before waiting in the queue):

- the task (``harness.tasks.check_task``, every rule between the task keys, the systems, the strategy and
  the augmentations): the systems fit the task, the shift level exists for the system and an explicit range
  is valid for it (``harness.pde.resolve_ranges`` / ``harness.pde.resolve_time_ranges``,
  as data loading), the time window, target frame and unroll fit the trajectory, the masked strategy's ratio
  and patch grid (``harness.train``, as ``Masked`` / ``TimeMasked``), each pretext strategy's window
  and each augmentation a symmetry of its system's equation;
- data on disk (a part's `data`, ``harness.data.parts``): the files' layout from their headers, their grid
  against `resolution`, the task's kind of data (steady samples; trajectories with the task's `nt` frames over
  its `horizon`), rows for each split's n (``check_source``, as the data step's ``load``), and for the steady
  task supervised pretraining on a file and a zero-shot model of the data's channels;
- model: resolved before these checks (``harness.sweep.families``): the family and its sizes, which fit the grid
  (``harness.models.Family.check_grid``, as the modules' ``features``);
- training: every train setting and the constraints between them -- ``TrainConfig``, as the training loop (when
  the point's typed config is built, ``harness.sweep.expand.resolve``);
- zero-shot only of a supervised pretraining (a pretext head predicts no solution), and a pretraining loss
  setting only for supervised pretraining (the pretext strategies have their own losses);
- memory: each generated split a stage reads, held whole while it is generated, fits the largest host memory a
  backend offers (``harness.pde.generated_bytes``, ``harness.backends.largest_host``); parameters, Adam state,
  one batch's activations and the resident data of each training stage
  (``harness.models.Family.train_memory`` of the point's family, attention's probabilities included, with the
  task's input channels and sample sizes,
  ``harness.tasks.resident_sizes``) fit the largest device a backend offers
  (``harness.backends.largest_device``); a training set that streams there (the `stream` group,
  ``harness.job.StreamConfig.streams``, as ``harness.train.stream.over_budget`` at run time) counts as one
  batch, and only generated steady training sets stream (``stream.mode: always`` on others is refused);
- packing (a sweep's `pack:`, after every point, ``check_packed``): the jobs of one shape that hold most, as many
  as one fused group takes (``pack.group``), fit the largest device together, each with what it holds alone plus
  the stacked copy of its parameters and that copy's gradient (``harness.train.fused``).

Each failure is one ``SweepError`` line: the file, the key and its line, the point, what must hold, the fix.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.backends import Device
from harness.data import PARTS, has_data
from harness.data.parts import check_needs, model_channels, needs_of, resolve_part
from harness.errors import HarnessError
from harness.job import Downstream, Job, JobConfig, Point, Pretrain, TrainConfig, shape_key
from harness.models import FLOAT_BYTES, PARAM_TRAIN_BYTES, Memory, arch_of, family, sizes_of
from harness.pde import generated_bytes, model_coefs
from harness.store import Stage
from harness.sweep.schema import Where
from harness.tasks import TIME_TASKS, TaskRuleError, check_task, is_time, resident_sizes

GIB = 1 << 30
Stages = list[tuple[Stage, JobConfig]]


@dataclass(frozen=True)
class Bounds:
    """What every point is checked against: the largest device and the largest host memory a backend offers one
    job (``harness.backends.largest_device``, ``largest_host``), and the folder data files' fingerprints are
    cached in (the results root's data cache; None: ``harness.data.fingerprint``'s default)."""

    device: Device
    host: Device
    cache_dir: str | None = None


def check_point(point: dict[str, Any], config: Point, stages: Stages, where: Where,
                bounds: Bounds) -> dict[Stage, Memory]:
    """Raise SweepError unless the resolved ``config`` of ``point`` can run as the (stage, job config) pairs
    ``stages`` it expands to within ``bounds``, its training sets held as its ``stream`` settings say; returns
    what each of its training stages holds on its device (for ``check_packed``)."""
    try:
        return _check(config, stages, bounds)
    except _Bad as bad:
        raise where.at_point(bad.key, point, bad.message) from None


class _Bad(Exception):
    """A rule broken at config ``key``: ``message`` says what must hold and the fix."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key, self.message = key, message


def _run(key: str, check, *args: Any, fix: str = "") -> Any:
    """``check(*args)``, its HarnessError turned into a ``_Bad`` at ``key`` (with ``fix`` appended, if any)."""
    try:
        return check(*args)
    except HarnessError as exc:
        raise _Bad(key, f"{exc}; {fix}" if fix else str(exc)) from None


def resolve_data(point: dict[str, Any], config: dict[str, Any], where: Where, base: str | None,
                 cache_dir: str | None = None) -> dict[str, Any]:
    """The nested config of ``point`` (the sweep file's values) with each part's data source checked against its
    files and resolved (``harness.data.parts.resolve_part``: paths, fingerprint, cached in ``cache_dir``), before
    its typed config and the stages' ids are taken from it."""
    time = config["task"] in TIME_TASKS
    for name in PARTS:
        try:
            config[name] = resolve_part(name, config[name], config["resolution"], base=base, cache_dir=cache_dir,
                                        frames=(config["nt"], config["horizon"]) if time else None)
        except HarnessError as exc:
            raise where.at_point(f"{name}.data", point, str(exc)) from None
    return config


def _check_data(stages: Stages, cache_dir: str | None) -> None:
    """Each stage's data files hold the samples it asks for; a zero-shot model fits the data's channels."""
    for stage, job in stages:
        name = "pretrain" if stage == "pretrain" else "downstream"
        part = job.pretrain if stage == "pretrain" else job.downstream
        assert part is not None and (stage != "zeroshot" or job.pretrain is not None)
        if has_data(part):
            _run(f"{name}.data", functools.partial(check_needs, cache_dir=cache_dir), name, part)
        if is_time(job):  # trajectories from a file give the model the channels generated ones give it
            if stage == "zeroshot":
                _check_zeroshot_coefs(job)
            continue
        if isinstance(part, Pretrain) and has_data(part) and part.strategy != "supervised":
            raise _Bad("pretrain.strategy", f"pretrain.data trains supervised pretraining only, not "
                                            f"{part.strategy}: set pretrain.strategy: supervised")
        if stage == "zeroshot" and (has_data(job.pretrain) or has_data(part)):
            channels = functools.partial(model_channels, cache_dir=cache_dir)
            ours, theirs = (_run(f"{n}.data", channels, n, p)
                            for n, p in (("downstream", part), ("pretrain", job.pretrain)))
            if ours != theirs:
                raise _Bad("downstream.data", f"init zeroshot evaluates the pretrained model as it is, but the "
                                              f"downstream data has {ours[0]} input and {ours[1]} output channels, "
                                              f"the pretrained model {theirs[0]} and {theirs[1]}: use init "
                                              "pretrained (fine-tuning re-initialises the modules that differ)")


def _check_zeroshot_coefs(job: JobConfig) -> None:
    """A zero-shot time job's pretrained model takes the coefficient channels of its downstream data."""
    assert job.pretrain is not None and job.downstream is not None  # a zero-shot job has both parts
    pre, down = job.pretrain.system, job.downstream.system
    theirs, ours = model_coefs(pre), model_coefs(down)
    if ours != theirs:
        raise _Bad("init", f"init zeroshot evaluates the pretrained model as it is, but a model on {pre} takes the "
                           f"coefficient channels {', '.join(theirs)} and one on {down} {', '.join(ours)}: use init "
                           "pretrained (fine-tuning re-initialises the lifting)")


def _check(config: Point, stages: Stages, bounds: Bounds) -> dict[Stage, Memory]:
    pretrain, names = config.pretrain, [stage for stage, _ in stages]
    _check_data(stages, bounds.cache_dir)
    try:
        check_task(config, names)
    except TaskRuleError as exc:
        raise _Bad(exc.key, str(exc)) from None
    strategy = pretrain.strategy
    if "zeroshot" in names and strategy != "supervised":
        raise _Bad("init", f"init zeroshot needs pretrain.strategy supervised, not {strategy}; add "
                           f"`exclude: [{{init: zeroshot, pretrain.strategy: {strategy}}}]`")
    if "pretrain" in names and strategy != "supervised" and pretrain.train.loss != "sse":
        raise _Bad("pretrain.train.loss", f"pretrain.train.loss applies to supervised pretraining; the {strategy} "
                                          "strategy has its own loss: remove pretrain.train.loss for it")
    held: dict[Stage, Memory] = {}
    for stage, job in stages:
        if stage == "pretrain":
            assert job.pretrain is not None
            _check_generation("pretrain", config, job.pretrain, bounds.host)
            held[stage] = _check_memory("pretrain.train", config, job.pretrain.train, job.pretrain, bounds.device)
        else:
            assert job.downstream is not None
            _check_generation("downstream", config, job.downstream, bounds.host)
            if stage != "zeroshot":
                assert job.train is not None
                held[stage] = _check_memory("train", config, job.train, job.downstream, bounds.device)
    return held


def _check_generation(name: str, config: Point, part: Pretrain | Downstream, host: Device) -> None:
    """Refuse a generated split (of part ``name``) that does not fit the largest host memory while it is
    generated: a split is generated whole before it is cached (and a training set streamed from the cache)."""
    if has_data(part):
        return
    res, nt = config.resolution, config.nt if is_time(config) else None
    for split, n in needs_of(part).items():
        if (need := generated_bytes(n, res, nt)) > host.bytes:
            raise _Bad(f"{name}.n_{split}", (
                f"generating the {split} set ({n:,} samples at {res}x{res}) needs about {need / GIB:,.1f} GiB of "
                f"memory but the largest memory a backend offers one job is {host.bytes / GIB:,.1f} GiB "
                f"({host.what}); use fewer samples, a lower resolution or a data file ({name}.data), or set "
                "slurm.mem_gb to the memory of a bigger node"))


def _check_memory(key: str, config: Point, settings: TrainConfig, part: Pretrain | Downstream,
                  device: Device) -> Memory:
    """What a training stage (``key``: its train settings; ``part``: its data) holds on its device
    (``train_memory``), its training set counted as one batch where it streams there; refused where that exceeds
    the largest device."""
    rules, sizes = family(arch_of(config.model)), sizes_of(config.model)
    res, stream = config.resolution, config.stream
    in_channels, sample_floats = resident_sizes(config)
    assert part.n_train is not None  # a training stage's part has its training-set size
    n_train, n_val, batch = part.n_train, part.n_val, min(settings.batch_size, part.n_train)
    streamable = not is_time(config) and not has_data(part)
    if stream.mode == "always" and not streamable:
        raise _Bad("stream.mode", "stream.mode always streams generated steady training sets only; "
                                  f"{'data files' if has_data(part) else 'trajectory datasets'} load resident (their "
                                  "formats have no cheap row reads yet): set stream.mode: auto or never")
    streams = streamable and stream.streams(n_train * sample_floats * FLOAT_BYTES, device.bytes)

    def need(samples: int) -> Memory:
        return rules.train_memory(sizes, resolution=res, batch=batch, samples=samples, in_channels=in_channels,
                                  out_channels=1, sample_floats=sample_floats)

    held = need((batch if streams else n_train) + n_val)
    if held.total <= device.bytes:
        return held
    if streamable and not streams and need(batch + n_val).total <= device.bytes:
        setting = ("stream.mode", "stream.mode is never") if stream.mode == "never" else (
            "stream.budget_gb", f"stream.budget_gb = {stream.budget_gb:g} keeps it resident")
        raise _Bad(setting[0], (
            f"training needs about {held.total / GIB:,.1f} GiB with its training set resident "
            f"({held.data / GIB:,.1f} GiB of data) but the largest device a backend offers has "
            f"{device.bytes / GIB:,.1f} GiB ({device.what}), and {setting[1]}; set stream.mode: auto (with "
            "stream.budget_gb: 0) or always to read the training batches from the cache file"))
    raise _Bad("model.params" if config.model.params is not None else f"model.{rules.width_keys[0]}", (
        f"training needs about {held.total / GIB:,.1f} GiB (parameters with gradients and Adam state "
        f"{held.params / GIB:,.1f} GiB, one batch's activations {held.activations / GIB:,.1f} GiB, "
        f"{'one streamed training batch' if streams else 'training'} and validation data "
        f"{held.data / GIB:,.1f} GiB) but the largest device a backend offers "
        f"has {device.bytes / GIB:,.1f} GiB ({device.what}); use {rules.memory_fix}, a smaller resolution, "
        f"{key}.batch_size or n_train, or set slurm.mem_gb to the memory of a bigger device"))


def check_packed(jobs: list[Job], held: Mapping[str, Memory | None], where: Where, device: Device) -> None:
    """Refuse a packed sweep one of whose fused groups may not fit the largest device: per shape
    (``harness.job.fusable.shape_key``), the ``pack.group`` jobs of the shape that hold most (``held``: each job's
    ``train_memory`` by id; None: it trains nothing) together, whichever of them the backend groups at run time."""
    by_shape: dict[str, list[tuple[Memory, Job]]] = defaultdict(list)
    for job in jobs:
        if (key := shape_key(job)) is not None and (need := held.get(job.id)) is not None:
            by_shape[key].append((need, job))
    for same in by_shape.values():
        same.sort(key=lambda pair: pair[0].total, reverse=True)
        first = same[0][1]
        assert first.pack is not None  # a job with a shape key has its sweep's pack
        k = first.pack.group
        group = [need for need, _ in same[:k]]
        if (need := fused_bytes(group)) <= device.bytes:
            continue
        fit = max(m for m in range(1, len(group)) if m == 1 or fused_bytes(group[:m]) <= device.bytes)
        point = ", ".join(f"{key}={value}" for key, value in first.point.items()) or "base"
        batch = "pretrain.train.batch_size" if first.stage == "pretrain" else "train.batch_size"
        raise where.fail("pack.group", (
            f"pack.group = {k} trains {len(group)} of the sweep's {len(same)} {first.stage} jobs of one shape "
            f"(the largest at point ({point})) as one program, holding about {need / GIB:,.1f} GiB at once (each "
            "its parameters with gradients, Adam state and a stacked copy, one batch's activations and its data) but "
            f"the largest device a backend offers has {device.bytes / GIB:,.1f} GiB ({device.what})"),
            f"set pack.group to at most {fit} (1 trains each job alone) or use a smaller {batch}")


def fused_bytes(group: list[Memory]) -> int:
    """What a fused group of jobs (each holding ``Memory`` alone) holds on its device at once: each job's model,
    Adam state, data and one batch's activations (``harness.job.run.run_group`` loads each job's own) and, where
    more than one trains, the stacked copy of each one's parameters and that copy's gradient
    (``harness.train.fused.fused_step``)."""
    stacked = 2 if len(group) > 1 else 0  # copies of each parameter beyond its own, in floats
    return sum(m.total + m.params // PARAM_TRAIN_BYTES * stacked * FLOAT_BYTES for m in group)
