"""The train settings shared by the sweep schema and the training loop (torch-free, so `expand` stays light).

The same keys serve `train` (downstream training) and `pretrain.train`; `TrainConfig` checks every value and
every constraint between them, so a sweep is validated in full before any job runs.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from harness.errors import HarnessError

AUGMENTS = ("none", "shift", "noise", "scale")
CHOICES = {"optimizer": ("adam", "adamw"), "schedule": ("cosine", "constant"), "precision": ("fp32", "bf16"),
           "augment": AUGMENTS}


@dataclass(frozen=True)
class TrainConfig:
    """Train settings (docs/contracts.md); the same keys for pretraining and downstream training."""

    epochs: int = 500
    lr: float = 1e-3
    batch_size: int = 128  # capped by the training-set size
    weight_decay: float = 0.0
    optimizer: str = "adam"  # adam | adamw
    schedule: str = "cosine"  # cosine (per step, to min_lr over all epochs) | constant
    min_lr: float = 0.0
    precision: str = "fp32"  # fp32 | bf16 (bf16 autocast on CUDA only, fp32 elsewhere)
    compile: bool = False  # torch.compile, on CUDA only
    patience: int = 0  # stop after this many epochs without a better validation error; 0 = off
    augment: str = "none"  # none | shift | noise | scale (harness.train.augment), on training batches
    augment_prob: float = 0.5  # probability that a sample of a batch is augmented
    noise_level: float = 0.05  # noise: standard deviation relative to the sample's source RMS
    scale_max: float = 2.0  # scale: factor log-uniform in [1 / scale_max, scale_max]

    def __post_init__(self) -> None:
        for name, choices in CHOICES.items():
            if getattr(self, name) not in choices:
                raise HarnessError(f"train setting {name} must be one of {choices}, but got {getattr(self, name)!r}")
        checks = {
            "every number finite": all(math.isfinite(v) for v in vars(self).values() if isinstance(v, float)),
            "epochs >= 1": self.epochs >= 1,
            "lr > 0": self.lr > 0,
            "batch_size >= 1": self.batch_size >= 1,
            "weight_decay >= 0": self.weight_decay >= 0,
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
        return cls(**{name: _coerce(name, value, defaults[name]) for name, value in settings.items()})

    def to_dict(self) -> dict[str, Any]:
        """The settings as a plain dict (saved in every checkpoint)."""
        return dataclasses.asdict(self)


def _coerce(name: str, value: Any, default: Any) -> Any:
    """``value`` as the type of ``default``; numbers may come as strings (YAML reads ``1e-3`` as a string)."""
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
    raise HarnessError(f"train setting {name} must be a {kind.__name__}, but got {value!r}")
