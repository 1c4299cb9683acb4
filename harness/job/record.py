"""The job record: one typed job (``Job``, its ``JobConfig`` and the config's parts) that every layer passes, and a
sweep point's resolved config (``Point``), whose defaults are the sweep schema's. Plain dicts exist only at the edge,
where a job is read from or written to plan.json (``to_dict`` / ``from_dict``), so that ids and plans stay byte for
byte what they were. Torch-free."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.data import Spec, parse_spec
from harness.errors import HarnessError
from harness.job.train_settings import StreamConfig, TrainConfig
from harness.pde import DEFAULT_FRAMES, DEFAULT_HORIZON
from harness.store import Stage

Shift = str | list[float]  # a named shift level, or an explicit [lo, hi] coefficient range


def _spec(value: Any, missing: list[str] | None, at: str) -> Spec:
    return parse_spec(value, where=at.rstrip("."))


class ConfigError(HarnessError):
    """Settings that break a rule; ``key`` names them (``train``, ``pretrain.train``, ``stream``)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def _settings(kind: type) -> Any:
    """The reader of a settings class with its own ``from_dict`` (``TrainConfig``, ``StreamConfig``): the keys a
    dict leaves out take their defaults and are noted in ``missing``; a refusal is a ``ConfigError`` at the key."""
    def read(value: Any, missing: list[str] | None, at: str) -> Any:
        if missing is not None:
            missing += [at + f.name for f in dataclasses.fields(kind) if f.name not in value]
        try:
            return _build(kind, tuple(value.items()))
        except HarnessError as exc:
            raise ConfigError(at.rstrip("."), str(exc)) from None
    return read


@functools.lru_cache(maxsize=4096)
def _build(kind: type, items: tuple[tuple[str, Any], ...]) -> Any:
    """``kind.from_dict`` of the settings, once per distinct settings (a sweep's points repeat them)."""
    return kind.from_dict(dict(items))


def _record(kind: type) -> Any:
    def read(value: Any, missing: list[str] | None, at: str) -> Any:
        return kind.from_dict(value, missing, at)
    return read


def part(read: Any, default: Any = dataclasses.MISSING, *, omit: bool = False, inline: bool = False) -> Any:
    """A field read from a plan by ``read(value, missing, at)``; ``omit``: left out of the dict when None;
    ``inline``: a record whose keys sit in its parent's dict."""
    return dataclasses.field(default=default, metadata={"read": read, "omit": omit, "inline": inline})


def optional(read: Any = None) -> Any:
    """A field that is None where the dict has no such key (and then left out of it)."""
    return part(read, None, omit=True)


@functools.cache
def _layout(cls: type) -> tuple[tuple[str, Any, bool, bool, type | None], ...]:
    """(name, reader, omit, inline, inline kind) of each field of a record class, in order."""
    return tuple((f.name, f.metadata.get("read"), bool(f.metadata.get("omit")), bool(f.metadata.get("inline")),
                  f.metadata.get("kind")) for f in dataclasses.fields(cls))


class Record:
    """The dict of a frozen dataclass of the job record, and back: fields in order, nested records as dicts."""

    def to_dict(self) -> dict[str, Any]:
        """The record as plan.json holds it (the keys of a None ``optional`` field left out)."""
        out: dict[str, Any] = {}
        for name, _, omit, inline, _ in _layout(type(self)):
            value = getattr(self, name)
            if inline:
                out.update(value.to_dict() if value is not None else {})
            elif value is not None or not omit:
                out[name] = value.to_dict() if hasattr(value, "to_dict") else value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], missing: list[str] | None = None, at: str = "") -> Any:
        """The record of ``data``; a key it lacks takes the field's default (None for an ``optional`` one) and is
        noted in ``missing`` as a dotted key after ``at``. Unknown keys raise ``HarnessError``."""
        rest, values = dict(data), {}
        for name, read, omit, inline, kind in _layout(cls):
            if inline:
                own = {k: rest.pop(k) for k in [g[0] for g in _layout(kind)] if k in rest}
                values[name] = read(own, None, at) if own else None
            elif name in rest:
                value = rest.pop(name)
                values[name] = value if read is None or value is None else read(value, missing, f"{at}{name}.")
            elif omit:
                values[name] = None
            elif missing is not None:
                missing.append(at + name)
        if rest:
            raise HarnessError(f"{at or cls.__name__}: unknown key(s) {', '.join(sorted(rest))}")
        return cls(**values)


@dataclass(frozen=True)
class Model(Record):
    """The model: ``model.*``, every family's keys (``harness.models.MODEL_KEYS``), None where unset.

    A sweep point's names a family (``arch``), a parameter target (``params``) and any of the family's size keys;
    expand resolves it (``harness.models.resolve_model``) into a job's: the family (None for the FNO, so that FNO
    configs and ids are what they were before families), every size key of the family, and with a target the
    target and the model's true parameter count ``n_params``."""

    arch: str | None = optional()
    params: float | None = optional()
    width: int | None = optional()  # fno, oformer
    modes: int | None = optional()  # fno
    channels: int | None = optional()  # unet
    levels: int | None = optional()  # unet
    branch_width: int | None = optional()  # deeponet
    trunk_width: int | None = optional()  # deeponet
    basis: int | None = optional()  # deeponet
    depth: int | None = optional()  # oformer
    heads: int | None = optional()  # oformer
    patch: int | None = optional()  # oformer
    n_params: int | None = optional()  # resolved with a target


@dataclass(frozen=True)
class Resources(Record):
    """The ranks a job runs as: ``gpus`` per node on ``nodes`` nodes (``harness.backends.launch``); not in its id."""

    gpus: int = 1
    nodes: int = 1

    @property
    def world_size(self) -> int:
        return self.gpus * self.nodes


@dataclass(frozen=True)
class Forecast(Record):
    """A time-dependent task's keys as a job holds them (``harness.tasks.task_keys``); steady jobs have none."""

    task: str  # fixed_future | next_step
    time_window: int
    nt: int
    horizon: float
    target: int | None = optional()  # fixed_future, not in a pretext pretraining
    unroll: int | None = optional()  # next_step, not in a pretext pretraining


@dataclass(frozen=True)
class Trial(Record):
    """A tuning trial: its study (the untuned job's id), its index, and the search as JSON (``harness.sweep.tune``)."""

    study: str
    trial: int
    spec: str


@dataclass(frozen=True)
class Pretrain(Record):
    """The pretraining part: ``pretrain.*`` (``data``: a data file's spec, ``harness.data``, else generated)."""

    system: str = "poisson"
    shift: Shift = "id"
    strategy: str = "supervised"  # harness.train.STRATEGIES, or none (no pretraining)
    mask_ratio: float = 0.75
    mask_patches: int = 8
    seed: int = 0
    n_train: int = 32768
    n_val: int = 4096
    n_test: int = 4096
    train: TrainConfig = part(_settings(TrainConfig), TrainConfig())
    resources: Resources | None = optional(_record(Resources))  # a sweep point's; on the pretraining job, not here
    data: Spec | None = optional(_spec)


@dataclass(frozen=True)
class Downstream(Record):
    """The downstream part: ``downstream.*``; a zero-shot job trains on nothing (``n_train`` None)."""

    system: str = "poisson"
    shift: Shift = "id"
    n_train: int | None = part(None, 1024, omit=True)
    n_val: int = 4096  # validation samples, unless n_val_fraction is set
    n_val_fraction: float = 0.0  # > 0: n_val = max(n_val_min, ceil(n_val_fraction * n_train)), resolved at expand
    n_val_min: int = 16
    n_test: int = 4096
    data: Spec | None = optional(_spec)


@dataclass(frozen=True)
class JobConfig(Record):
    """What a job computes, hashed into its id: the keys its stage reads (``harness.sweep.expand.stage_configs``).

    A pretraining has ``pretrain`` (and no ``seed``, ``downstream`` nor ``train``); scratch has no ``pretrain``; a
    zero-shot job no ``seed`` nor ``train``; fine-tuning all of them, with ``pretrain_id``. ``forecast`` is None
    for steady jobs; ``tune`` is a tuning trial's."""

    resolution: int
    data_seed: int
    model: Model = part(_record(Model))
    forecast: Forecast | None = dataclasses.field(default=None, metadata={
        "read": _record(Forecast), "kind": Forecast, "inline": True})
    seed: int | None = optional()
    downstream: Downstream | None = optional(_record(Downstream))
    train: TrainConfig | None = optional(_settings(TrainConfig))
    pretrain_id: str | None = optional()
    pretrain: Pretrain | None = optional(_record(Pretrain))
    tune: Trial | None = optional(_record(Trial))

    @property
    def task(self) -> str:
        """steady, fixed_future or next_step."""
        return self.forecast.task if self.forecast is not None else "steady"


@dataclass(frozen=True)
class Point(Record):
    """A sweep point's resolved config: every key a sweep file may set, with its default (the sweep schema's
    defaults are these); the stages' job configs are taken from it (``harness.sweep.expand.stage_configs``)."""

    task: str = "steady"  # harness.tasks.TASKS
    time_window: int = 8  # frames in
    target: int = -1  # fixed_future: the frame predicted (negative: from the end)
    unroll: int = 0  # next_step: pushforward steps in training
    nt: int = DEFAULT_FRAMES
    horizon: float = DEFAULT_HORIZON
    resolution: int = 128
    data_seed: int | None = None  # None: each stage's data follow its seed (harness.sweep.expand.data_seed_of)
    seed: int = 0
    init: str = "pretrained"
    model: Model = part(_record(Model), Model())
    pretrain: Pretrain = part(_record(Pretrain), Pretrain(resources=Resources()))
    downstream: Downstream = part(_record(Downstream), Downstream())
    train: TrainConfig = part(_settings(TrainConfig), TrainConfig())
    resources: Resources = part(_record(Resources), Resources())  # of the downstream stages
    stream: StreamConfig = part(_settings(StreamConfig), StreamConfig())  # where training batches come from


@dataclass(frozen=True)
class Pack(Record):
    """How a job may share its training with others of its shape (the sweep's `pack:`, ``harness.job.fusable``);
    an execution choice, not in its id."""

    mode: str = "fused"
    group: int = 8  # the most jobs trained as one program


@dataclass(frozen=True)
class Job:
    """One job of a plan: its id (``harness.sweep.expand.job_id``: a hash of its stage and config), stage, sweep,
    config, the pretraining it depends on, the matrix point it came from ({dotted key: value}, as the sweep file
    wrote it), and how it runs, which is not in its id: ``resources``, ``stream`` and ``pack`` (None: the
    defaults), a trial's ``tune_storage`` and the sources ``evals`` it is scored on after training (a sweep's
    `eval:`). ``unwritten``: the config's dotted keys a plan written by an older harness did not hold; they take
    their defaults here and stay out of ``to_dict``, so that plan reads back byte for byte."""

    id: str
    stage: Stage
    sweep: str
    config: JobConfig
    depends_on: str | None = None
    point: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    tune_storage: str | None = None  # a trial's optuna storage (None: the sweep's journal file)
    resources: Resources | None = None
    stream: StreamConfig | None = None
    evals: tuple[Mapping[str, Any], ...] | None = None  # a sweep's `eval:` sources, checked (harness.sweep.evals)
    pack: Pack | None = None
    unwritten: frozenset[str] = dataclasses.field(default=frozenset(), compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "stage", Stage(self.stage))  # a stage given by its name is the same stage

    @property
    def part(self) -> Pretrain | Downstream:
        """The data part the job trains or evaluates on: its ``pretrain`` for a pretraining, else ``downstream``."""
        part = self.config.pretrain if self.stage is Stage.PRETRAIN else self.config.downstream
        assert part is not None  # every stage's config holds its part (stage_configs)
        return part

    @property
    def part_name(self) -> str:
        return "pretrain" if self.stage is Stage.PRETRAIN else "downstream"

    @property
    def train(self) -> TrainConfig | None:
        """The settings the job trains with (None for a zero-shot job, which trains nothing)."""
        if self.stage is Stage.PRETRAIN and self.config.pretrain is not None:
            return self.config.pretrain.train
        return self.config.train

    @property
    def world_size(self) -> int:
        """How many ranks the job runs as."""
        return (self.resources or Resources()).world_size

    def to_dict(self) -> dict[str, Any]:
        """The job as plan.json and its run folder's config.json hold it."""
        config = self.config.to_dict()
        for key in self.unwritten:
            *parents, leaf = key.split(".")
            tree = config
            for name in parents:
                tree = tree[name]
            tree.pop(leaf, None)
        out = {"id": self.id, "stage": self.stage.value, "sweep": self.sweep, "config": config,
               "depends_on": self.depends_on, "point": dict(self.point)}
        if self.config.tune is not None:
            out["tune_storage"] = self.tune_storage
        if self.resources is not None:
            out["resources"] = self.resources.to_dict()
        if self.stream is not None:
            out["stream"] = self.stream.to_dict()
        if self.evals is not None:
            out["evals"] = [dict(source) for source in self.evals]
        if self.pack is not None:
            out["pack"] = self.pack.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Job:
        """The job of a plan's (or config.json's) dict; raises ``HarnessError`` naming what it cannot read."""
        missing: list[str] = []
        unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)} - {"unwritten"})
        if unknown:
            raise HarnessError(f"job {data.get('id')}: unknown key(s) {', '.join(unknown)}")
        try:
            return cls(id=data["id"], stage=Stage(data["stage"]), sweep=data["sweep"],
                       config=JobConfig.from_dict(data["config"], missing), depends_on=data["depends_on"],
                       point=data.get("point", {}), tune_storage=data.get("tune_storage"),
                       resources=Resources.from_dict(data["resources"]) if "resources" in data else None,
                       stream=StreamConfig.from_dict(data["stream"]) if "stream" in data else None,
                       evals=tuple(data["evals"]) if "evals" in data else None,
                       pack=Pack.from_dict(data["pack"]) if "pack" in data else None,
                       unwritten=frozenset(missing))
        except (KeyError, TypeError, ValueError) as exc:
            raise HarnessError(f"job {data.get('id')}: {type(exc).__name__}: {exc}") from None
