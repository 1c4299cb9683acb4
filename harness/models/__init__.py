"""Neural operator families: one interface every family implements, and each family's size, torch-free.

The harness talks to a family through its ``model.arch`` name only: ``family(arch)`` here (torch-free: counts,
FLOPs, memory, the grid rules, the parameter-target rule), and ``harness.models.build.build_model`` for the
module. Families: ``fno``, ``unet``, ``deeponet``, ``oformer``, each in ``<arch>.py`` with its size in the
torch-free ``<arch>_size.py`` (the FNO's ``count_params``, ``flops_per_sample``, ``check_modes`` and
``train_memory`` are re-exported here); their docstrings give the layout and the formulas.

A job config's ``model`` (``resolve_model``, at expand): ``arch`` (left out for the FNO, so that FNO configs and
ids are what they were before families), the family's size keys, all resolved, and with a parameter target
``params`` the target and ``n_params``, the parameter count of the task's model (``in_channels`` ->
``out_channels``) at the resolved sizes. ``arch_of`` and ``sizes_of`` read it back; ``Shape`` is what one train
step of it costs depends on (the sweep estimate's key).

The module interface (``harness.models.operator.Operator``)::

    class Operator(nn.Module):
        arch: str                      # the family's model.arch name
        sizes: dict[str, int]          # its size keys (Family.defaults' keys) and their values
        in_channels: int               # C
        out_channels: int              # O
        feature_channels: int          # F
        lifting: nn.Module             # reads the inputs: the only weights whose shapes depend on C
        head: nn.Module                # features (B, F, n, n) -> outputs: the only weights that depend on O

        def features(self, x): ...     # (B, C, n, n) -> (B, F, n, n): everything but the head
        def forward(self, x):          # (B, C, n, n) -> (B, O, n, n)
            return self.head(self.features(x))
        def num_params(self) -> int    # == family(arch).count_params(sizes, ...)

A pretext strategy swaps the head (``model.head = PooledHead(model.feature_channels, k)`` gives (B, k)); a
fine-tuning drops the weights under ``head.`` (and under ``lifting.`` after a pretraining on other inputs, or
re-initialises the top-level modules of other shapes). Inputs are any C channels (7 for the steady task; the time
tasks' window frames and five coefficient channels), outputs any O (a solution, a window, derivatives).
``build_model`` checks the sizes against the grid; the module checks its input's channels and grid again.

Sizes are a few plain integer keys per family with defaults (``Family.defaults``): fno width, modes; unet
channels, levels; deeponet branch_width, trunk_width, basis; oformer width, depth, heads, patch.

The parameter-target rule (``Family.nearest``, for ``model.params``): the family's width keys
(``Family.width_keys``: fno width, unet channels, deeponet all three, oformer width) that are not given scale
together from their defaults -- v for the first, round(default_k v / default_first) for the others -- every
other key stays as given or at its default, and the v whose parameter count is nearest the target in log space
wins (sizes the family refuses are skipped; a tie goes to the smaller model).
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any, NamedTuple

from harness.errors import HarnessError
from harness.models import deeponet_size, fno_size, oformer_size, unet_size
from harness.models.fno_size import (
    FLOAT_BYTES,
    PARAM_TRAIN_BYTES,
    TRAIN_PASSES,
    Memory,
    check_modes,
    count_params,
    flops_per_sample,
    train_memory,
)

__all__ = ["ARCHS", "DEFAULT_ARCH", "FAMILIES", "FLOAT_BYTES", "MODEL_KEYS", "PARAM_TRAIN_BYTES", "SIZE_KEYS",
           "TRAIN_PASSES", "Family", "Kernel", "Memory", "ModelKeys", "Shape", "SizeError", "arch_of", "check_modes",
           "count_params", "family", "flops_per_sample", "resolve_model", "sizes_of", "train_memory"]

Problem = tuple[str, str]  # (size key, what must hold and the fix)
MAX_SCALE = 1 << 14  # the parameter-target rule's largest width


class SizeError(HarnessError):
    """Sizes a family refuses; ``key`` names the config key to change (``model.levels``)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


@functools.cache
def _parameters(fn: Callable[..., Any]) -> frozenset[str]:
    return frozenset(inspect.signature(fn).parameters)


def _call(fn: Callable[..., Any], values: Mapping[str, Any]) -> Any:
    """``fn`` called with the keyword arguments it takes among ``values`` (a family's functions name the size
    keys, ``resolution``, ``in_channels``, ``out_channels`` and ``batch`` they depend on)."""
    names = _parameters(fn)
    return fn(**{k: v for k, v in values.items() if k in names})


@dataclass(frozen=True)
class Family:
    """A model family's torch-free rules; ``rules`` is its size module (``count_params``, ``flops_per_sample``,
    ``activation_floats``, optional ``check_sizes`` and ``check_grid``)."""

    arch: str
    label: str  # the name its paper uses
    defaults: Mapping[str, int]
    width_keys: tuple[str, ...]
    rules: ModuleType
    sensor_grid: bool = False  # evaluates on the grid it was built for only

    def _rule(self, name: str) -> Callable[..., Any] | None:
        return getattr(self.rules, name, None)

    def sizes(self, given: Mapping[str, Any] | None = None) -> dict[str, int]:
        """The size keys with their defaults, updated with ``given``; raises ``SizeError`` for a key of another
        family, a value that is not an integer >= 1, or sizes the family refuses."""
        sizes = dict(self.defaults)
        for key, value in (given or {}).items():
            if key not in sizes:
                raise SizeError(f"model.{key}", f"model.{key} is no size key of {self.arch}; its size keys (with "
                                                f"defaults) are {self.describe()}: use those, or model.params")
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SizeError(f"model.{key}", f"model.{key} must be an integer >= 1, but got {value!r}")
            sizes[key] = value
        check = self._rule("check_sizes")
        if check is not None and (problem := _call(check, sizes)) is not None:
            raise SizeError(f"model.{problem[0]}", problem[1])
        return sizes

    @property
    def memory_fix(self) -> str:
        """What to change for a smaller training footprint (its size module's ``MEMORY_FIX``)."""
        return self.rules.MEMORY_FIX

    def describe(self) -> str:
        """``key=default`` of every size key, comma-separated."""
        return ", ".join(f"{k}={v}" for k, v in self.defaults.items())

    def count_params(self, sizes: Mapping[str, int], *, resolution: int, in_channels: int,
                     out_channels: int) -> int:
        """Real parameters of the family's module of these sizes (its ``num_params``)."""
        return _call(self.rules.count_params, {**sizes, "resolution": resolution, "in_channels": in_channels,
                                               "out_channels": out_channels})

    def flops_per_sample(self, sizes: Mapping[str, int], *, resolution: int, in_channels: int, out_channels: int,
                         batch: int = 1) -> float:
        """Forward FLOPs of one sample in a batch of ``batch`` (work a batch shares, divided among it)."""
        return _call(self.rules.flops_per_sample, {**sizes, "resolution": resolution, "in_channels": in_channels,
                                                   "out_channels": out_channels, "batch": batch})

    def train_memory(self, sizes: Mapping[str, int], *, resolution: int, batch: int, samples: int, in_channels: int,
                     out_channels: int, sample_floats: int | None = None) -> Memory:
        """What training the family's module on ``samples`` resident samples at batch size ``batch`` holds on
        its device (``Memory``); a sample holds ``sample_floats`` floats (default: its
        input and output channels on the grid)."""
        values = {**sizes, "resolution": resolution, "in_channels": in_channels, "out_channels": out_channels}
        params = self.count_params(sizes, resolution=resolution, in_channels=in_channels, out_channels=out_channels)
        activations = _call(self._rule("activation_floats"), {**values, "batch": batch})
        per_sample = (in_channels + out_channels) * resolution**2 if sample_floats is None else sample_floats
        return Memory(params * PARAM_TRAIN_BYTES, activations * FLOAT_BYTES, samples * per_sample * FLOAT_BYTES)

    def check_grid(self, sizes: Mapping[str, int], resolution: int) -> None:
        """Raise ``SizeError`` unless the module of these sizes runs on a ``resolution`` x ``resolution`` grid."""
        check = self._rule("check_grid")
        if check is not None and (problem := _call(check, {**sizes, "resolution": resolution})) is not None:
            raise SizeError(f"model.{problem[0]}", problem[1])

    def check_evaluation_grid(self, trained: int, asked: int) -> None:
        """Raise ``SizeError`` if a module built for a ``trained`` grid cannot evaluate on an ``asked`` one."""
        if self.sensor_grid and trained != asked:
            raise SizeError("resolution", f"a {self.label} evaluates on its sensor grid only ({trained}x{trained}), "
                                          f"not on {asked}x{asked}: train it at resolution {asked}, or use a "
                                          "model.arch that is not tied to its grid (fno, unet, oformer)")

    def scaled(self, value: int, fixed: Mapping[str, Any] | None = None) -> dict[str, int]:
        """The sizes the parameter-target rule tries at ``value`` (module docstring): the width keys ``fixed``
        does not give scaled together from their defaults, the first to ``value``; the rest from ``fixed`` or the
        defaults. Not checked: the rule skips sizes the family refuses."""
        fixed = dict(fixed or {})
        scaled = [k for k in self.width_keys if k not in fixed]
        if not scaled:
            keys = " and ".join(f"model.{k}" for k in self.width_keys)
            raise SizeError("model.params", f"model.params sets {keys} of {self.arch}: remove model.params or {keys}")
        first = self.defaults[scaled[0]]
        return {**self.defaults, **fixed, **{k: max(1, round(self.defaults[k] * value / first)) for k in scaled}}

    def nearest(self, target: float, *, resolution: int, in_channels: int, out_channels: int,
                fixed: Mapping[str, Any] | None = None) -> dict[str, int]:
        """The sizes whose parameter count is nearest ``target`` by the parameter-target rule (module docstring),
        ``fixed`` holding the size keys given beside it."""
        self.sizes(fixed)
        if isinstance(target, bool) or not (isinstance(target, int | float) and math.isfinite(target) and target >= 1):
            raise SizeError("model.params", f"model.params must be a number >= 1, but got {target!r}")
        best: tuple[float, dict[str, int]] | None = None
        for value in range(1, MAX_SCALE + 1):
            sizes = self.scaled(value, fixed)
            try:
                self.sizes(sizes)
            except SizeError:
                continue
            count = self.count_params(sizes, resolution=resolution, in_channels=in_channels,
                                      out_channels=out_channels)
            gap = abs(math.log(count / target))
            if best is None or gap < best[0]:
                best = (gap, sizes)
            if count >= target:  # counts grow with the width: the next ones are farther
                break
        assert best is not None, f"{self.arch} has no valid sizes below width {MAX_SCALE}"
        return best[1]


FAMILIES: dict[str, Family] = {
    "fno": Family("fno", "FNO", fno_size.DEFAULTS, fno_size.WIDTH_KEYS, fno_size),
    "unet": Family("unet", "U-Net", unet_size.DEFAULTS, unet_size.WIDTH_KEYS, unet_size),
    "deeponet": Family("deeponet", "DeepONet", deeponet_size.DEFAULTS, deeponet_size.WIDTH_KEYS, deeponet_size,
                       sensor_grid=True),
    "oformer": Family("oformer", "OFormer", oformer_size.DEFAULTS, oformer_size.WIDTH_KEYS, oformer_size),
}
ARCHS = tuple(FAMILIES)


def family(arch: str) -> Family:
    """The family named ``arch`` (a ``model.arch`` value); raises ``SizeError`` naming the families."""
    if arch not in FAMILIES:
        raise SizeError("model.arch", f"model.arch {arch!r} is no model family: use one of {', '.join(ARCHS)}")
    return FAMILIES[arch]


# The keys of a sweep's `model` group: the family, a parameter target, and every family's size keys.
SIZE_KEYS = tuple(dict.fromkeys(key for rules in FAMILIES.values() for key in rules.defaults))
MODEL_KEYS = ("arch", "params", *SIZE_KEYS)
DEFAULT_ARCH = "fno"


ModelKeys = Mapping[str, Any] | Any  # a model group as a mapping, or a record of it (``harness.job.Model``)


def _keys(model: ModelKeys) -> Mapping[str, Any]:
    return model if isinstance(model, Mapping) else model.to_dict()


def arch_of(model: ModelKeys) -> str:
    """The family of a (sweep point's or job config's) ``model`` group: its ``arch``, else the FNO."""
    return _keys(model).get("arch") or DEFAULT_ARCH


def sizes_of(model: ModelKeys) -> dict[str, int]:
    """The size keys a ``model`` group sets for its family (None: not set), in the family's order."""
    keys = _keys(model)
    return {k: keys[k] for k in family(arch_of(keys)).defaults if keys.get(k) is not None}


def resolve_model(model: ModelKeys, *, resolution: int, in_channels: int, out_channels: int) -> dict[str, Any]:
    """A job config's ``model`` from a point's ``model`` group (see the module docstring): its family's sizes,
    the keys it does not set at their defaults or, with ``params``, by the parameter-target rule for a model of
    ``in_channels`` -> ``out_channels`` on the grid. Raises ``SizeError`` for an unknown family, a key set to
    something other than null that is no size key of the family, sizes it refuses or that do not fit the grid."""
    model = _keys(model)
    arch, target = arch_of(model), model.get("params")
    rules = family(arch)
    given = {k: v for k, v in model.items() if k not in ("arch", "params", "n_params") and v is not None}
    io = {"resolution": resolution, "in_channels": in_channels, "out_channels": out_channels}
    sizes = rules.sizes(given) if target is None else rules.nearest(target, fixed=given, **io)
    rules.check_grid(sizes, resolution)
    out: dict[str, Any] = {} if arch == DEFAULT_ARCH else {"arch": arch}
    if target is None:
        return {**out, **sizes}
    return {**out, "params": target, **sizes, "n_params": rules.count_params(sizes, **io)}


class Shape(NamedTuple):
    """What one train step of a job's model costs depends on: its family, sizes and grid (the estimate's key)."""

    arch: str
    sizes: tuple[tuple[str, int], ...]
    resolution: int

    @classmethod
    def of(cls, model: ModelKeys, resolution: int) -> Shape:
        """The shape of a job config's ``model`` on a ``resolution`` grid."""
        return cls(arch_of(model), tuple(sizes_of(model).items()), resolution)

    def flops_per_sample(self, in_channels: int = 7, out_channels: int = 1) -> float:
        """Forward FLOPs of one sample (``Family.flops_per_sample``), for the steady task's channels by default."""
        return family(self.arch).flops_per_sample(dict(self.sizes), resolution=self.resolution,
                                                  in_channels=in_channels, out_channels=out_channels)


@dataclass(frozen=True)
class Kernel:
    """What one pass of a job's model costs depends on: its shape and its input and output channels."""

    shape: Shape
    in_channels: int = 7  # the steady task's (harness.train.STEADY_IN_CHANNELS)
    out_channels: int = 1

    def flops_per_sample(self) -> float:
        """Forward FLOPs of one sample (the family's own ``flops_per_sample``)."""
        return self.shape.flops_per_sample(self.in_channels, self.out_channels)
