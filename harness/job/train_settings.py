"""A job's train settings (``TrainConfig``, the same keys for `train` and `pretrain.train`) and stream settings
(``StreamConfig``, the sweep's `stream` group), each value and every constraint between them checked on
construction, so that a sweep is validated in full before any job runs. Torch-free."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from harness.errors import HarnessError

STEADY_AUGMENTS = ("none", "shift", "noise", "scale")  # harness.train.steady_augment
AUGMENTS = (*STEADY_AUGMENTS, "galilean")  # galilean: the time-dependent systems only (harness.train.time_augment)
LOSSES = ("sse", "mse", "rel_l2")
CHOICES = {"optimizer": ("adam", "adamw"), "schedule": ("cosine", "constant"), "precision": ("fp32", "bf16"),
           "augment": AUGMENTS, "loss": LOSSES}
STREAM_MODES = ("auto", "always", "never")  # harness.train.stream
BUDGET_FRACTION = 0.5  # of the device's memory: a training set's resident budget when `stream.budget_gb` is 0
MAX_BUDGET_GB = float(1 << 33)  # its bytes stay an int64
# Evaluations over a run when `eval_every` is 0 (auto), besides the one before training and the one at its end.
EVALS = 50


@dataclass(frozen=True)
class TrainConfig:
    """Train settings (docs/contracts.md); the same keys for pretraining and downstream training."""

    epochs: int = 500  # the length of the run, unless `steps` is set
    steps: int = 0  # total optimiser steps (epochs then follow from N and the batch size); 0 = use `epochs`
    min_steps: int = 0  # a floor on the total optimiser steps, whatever N
    lr: float = 1e-3
    batch_size: int = 128  # capped by the training-set size
    loss: str = "sse"  # sse (sum of squared errors per sample) | mse | rel_l2 (supervised objectives)
    eval_every: int = 0  # validate every this many steps; 0 = EVALS evaluations over the run; always at the end
    checkpoint_every_s: float = 60.0  # write last.pt at most this often (and at the end, and on SIGTERM/SIGUSR2)
    weight_decay: float = 0.0
    optimizer: str = "adam"  # adam | adamw
    schedule: str = "cosine"  # cosine (per step, to min_lr over all epochs) | constant
    min_lr: float = 0.0
    precision: str = "fp32"  # fp32 | bf16 (bf16 autocast on CUDA only, fp32 elsewhere)
    compile: bool = False  # torch.compile, on CUDA only
    patience: int = 0  # stop after this many evaluations without a better validation error; 0 = off
    augment: str = "none"  # none | shift | noise | scale | galilean (the objective's augmentation), on training batches
    augment_prob: float = 0.5  # probability that a sample of a batch is augmented
    noise_level: float = 0.05  # noise: standard deviation relative to the sample's source RMS
    scale_max: float = 2.0  # scale: factor log-uniform in [1 / scale_max, scale_max]

    def __post_init__(self) -> None:
        for name, choices in CHOICES.items():
            if getattr(self, name) not in choices:
                raise HarnessError(f"train setting {name} must be one of {choices}, but got {getattr(self, name)!r}")
        checks = {
            "epochs >= 1": self.epochs >= 1,
            "steps >= 0": self.steps >= 0,
            "min_steps >= 0": self.min_steps >= 0,
            "eval_every >= 0": self.eval_every >= 0,
            "checkpoint_every_s >= 0": self.checkpoint_every_s >= 0,
            "lr > 0 and finite": 0 < self.lr < math.inf,
            "batch_size >= 1": self.batch_size >= 1,
            "weight_decay >= 0": self.weight_decay >= 0,
            "weight_decay, noise_level, scale_max finite": all(map(math.isfinite, (self.weight_decay,
                                                                                   self.noise_level, self.scale_max))),
            "0 <= min_lr <= lr": 0 <= self.min_lr <= self.lr,
            "patience >= 0": self.patience >= 0,
            "0 <= augment_prob <= 1": 0 <= self.augment_prob <= 1,
            "noise_level >= 0": self.noise_level >= 0,
            "scale_max >= 1": self.scale_max >= 1,
        }
        broken = [rule for rule, holds in checks.items() if not holds]
        if broken:
            raise HarnessError(f"train settings must satisfy {', '.join(broken)}, but got {self.to_dict()}")

    @classmethod
    def from_dict(cls, settings: dict[str, Any]) -> TrainConfig:
        """Build from a settings dict; unknown keys and values of the wrong type raise ``HarnessError``."""
        defaults = {f.name: f.default for f in dataclasses.fields(cls)}
        unknown = sorted(set(settings) - set(defaults))
        if unknown:
            raise HarnessError(f"unknown train setting(s) {unknown}; valid settings with their defaults: {defaults}")
        return cls(**{name: _coerce(f"train setting {name}", value, defaults[name])
                      for name, value in settings.items()})

    def to_dict(self) -> dict[str, Any]:
        """The settings as a plain dict (saved in every checkpoint)."""
        return dict(self.__dict__)  # every value is a number, a string or a bool: no copy of nested values needed

    def budget(self, n_train: int) -> Budget:
        """The run's length on ``n_train`` samples: batch size, steps per epoch, total steps, evaluation interval.

        Total steps: ``steps`` if set, else ``epochs`` x steps per epoch; at least ``min_steps``. The cosine
        schedule spans them, and the last epoch may be partial.
        """
        batch = min(self.batch_size, n_train)
        per_epoch = math.ceil(n_train / batch)
        total = max(self.steps or self.epochs * per_epoch, self.min_steps)
        every = self.eval_every or max(1, math.ceil(total / EVALS))
        return Budget(batch, per_epoch, total, min(every, total))


@dataclass(frozen=True)
class Budget:
    """How long a run is, derived from its settings and its training-set size (``TrainConfig.budget``)."""

    batch_size: int
    steps_per_epoch: int
    total_steps: int
    eval_every: int

    @property
    def evaluations(self) -> int:
        """Validation passes: before training, every ``eval_every`` steps, and at the end."""
        return 1 + self.total_steps // self.eval_every + (self.total_steps % self.eval_every > 0)


def _coerce(name: str, value: Any, default: Any) -> Any:
    """``value`` (of setting ``name``) as the type of ``default``; numbers may come as strings (YAML reads
    ``1e-3`` as a string)."""
    kind = type(default)
    try:
        if kind is bool and isinstance(value, bool):
            return value
        if kind is int and not isinstance(value, bool) and float(value) == int(float(value)):
            return int(float(value))
        if kind is float and not isinstance(value, bool):
            return float(value)
        if kind is str and isinstance(value, str):
            return value
    except (TypeError, ValueError, OverflowError):
        pass
    raise HarnessError(f"{name} must be a {kind.__name__}, but got {value!r}")


@dataclass(frozen=True)
class StreamConfig:
    """The sweep's ``stream`` group: whether a job's training set streams from its cache file
    (``harness.train.stream``) or stays resident on the device. It changes where the batches come from, never
    their values, so it stays out of the job's id (``harness.sweep.expand``)."""

    mode: str = "auto"  # auto: stream when the resident set exceeds the budget | always | never
    budget_gb: float = 0.0  # the resident budget in GiB; 0 = BUDGET_FRACTION of the device's memory

    def __post_init__(self) -> None:
        if self.mode not in STREAM_MODES:
            raise HarnessError(f"stream.mode must be one of {STREAM_MODES}, but got {self.mode!r}")
        if not 0 <= self.budget_gb <= MAX_BUDGET_GB:
            raise HarnessError(f"stream.budget_gb must be a number of GiB in [0, {MAX_BUDGET_GB:.3g}], but got "
                               f"{self.budget_gb!r}")

    @classmethod
    def from_dict(cls, settings: dict[str, Any] | None) -> StreamConfig:
        """Build from the ``stream`` group (None: the defaults); unknown keys raise ``HarnessError``."""
        settings = settings or {}
        defaults = {f.name: f.default for f in dataclasses.fields(cls)}
        unknown = sorted(set(settings) - set(defaults))
        if unknown:
            raise HarnessError(f"unknown stream setting(s) {unknown}; valid settings with their defaults: {defaults}")
        return cls(**{name: _coerce(f"stream.{name}", value, defaults[name]) for name, value in settings.items()})

    def to_dict(self) -> dict[str, Any]:
        """The settings as a plain dict (the job's ``stream`` entry)."""
        return dict(self.__dict__)

    def budget_bytes(self, device_bytes: int) -> int:
        """The memory a training set may take resident on a device of ``device_bytes``."""
        return int(self.budget_gb * (1 << 30)) if self.budget_gb > 0 else int(BUDGET_FRACTION * device_bytes)

    def streams(self, resident_bytes: int, device_bytes: int) -> bool:
        """Whether a training set of ``resident_bytes`` (its float32 inputs and targets) streams on that device."""
        return self.mode == "always" or (self.mode == "auto" and resident_bytes > self.budget_bytes(device_bytes))

