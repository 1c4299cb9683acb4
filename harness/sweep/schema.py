"""The sweep schema: every config key with its default, the allowed values, and the per-value checks.

Pure and light (no YAML, no torch): `harness.sweep.spec` reads a sweep file through it, `harness.sweep.tune`
checks a search space with it, and `Where` formats every expand-time error as one line naming the file, the
key (and its YAML line), the problem and the fix.
"""

from __future__ import annotations

import difflib
import math
import re
from typing import Any

from harness.data import parse_spec
from harness.errors import DataFileError, HarnessError, SweepError
from harness.job import CHOICES as TRAIN_CHOICES
from harness.job import STREAM_MODES, Point, StreamConfig
from harness.models import ARCHS, DEFAULT_ARCH, MODEL_KEYS, SIZE_KEYS
from harness.pde import MIXED, NAVIER_STOKES, SHIFT_LEVELS, SYSTEMS, TIME_MIXED, TIME_SYSTEMS
from harness.store import Stage
from harness.sweep.dotted import flatten
from harness.tasks import TASKS, TIME_LEVELS
from harness.train import STRATEGIES

# Every key with its default: the job record's (``harness.job.Point``), in one place, but for the model group, whose
# keys are every family's (``harness.models.MODEL_KEYS``): null where unset, resolved at expand to the family's
# sizes (``harness.models.resolve_model``). Not in a job's id: `resources`, `pretrain.resources` (the ranks a job
# runs as, ``harness.backends.launch``) and `stream` (where its training batches come from,
# ``harness.job.StreamConfig``); `data_seed` null: each stage's data follow its seed.
DEFAULTS: dict[str, Any] = {**Point().to_dict(),
                            "model": {key: DEFAULT_ARCH if key == "arch" else None for key in MODEL_KEYS}}

SHIFT_NAMES = tuple(sorted({level for levels in SHIFT_LEVELS.values() for level in levels} | set(TIME_LEVELS)))
CHOICES: dict[str, tuple[str, ...]] = {
    "task": TASKS,
    "model.arch": ARCHS,
    "init": tuple(stage.init for stage in Stage if stage.init),
    "pretrain.system": (*SYSTEMS, MIXED, *TIME_SYSTEMS, TIME_MIXED, NAVIER_STOKES),
    "pretrain.strategy": (*STRATEGIES, "none"),
    "downstream.system": (*SYSTEMS, *TIME_SYSTEMS, NAVIER_STOKES),
    "stream.mode": STREAM_MODES,
    **{f"train.{k}": v for k, v in TRAIN_CHOICES.items()},
    **{f"pretrain.train.{k}": v for k, v in TRAIN_CHOICES.items()},
}
# Keys whose value is a shift: a named level or an explicit [lo, hi] coefficient range.
SHIFT_KEYS = ("pretrain.shift", "downstream.shift")
# Integer keys that must be >= 1 (sizes), >= 0 (seeds), or even and >= 8 (grid).
POSITIVE_KEYS = (*(f"model.{key}" for key in SIZE_KEYS), "train.epochs", "train.batch_size", "pretrain.train.epochs",
                 "pretrain.train.batch_size", "pretrain.n_train", "pretrain.n_val", "pretrain.n_test",
                 "pretrain.mask_patches", "downstream.n_train", "downstream.n_val", "downstream.n_val_min",
                 "downstream.n_test", "resources.gpus", "resources.nodes", "pretrain.resources.gpus",
                 "pretrain.resources.nodes")
SEED_KEYS = ("data_seed", "seed", "pretrain.seed")
# Keys that may be null (unset): data_seed, whose null means "each stage's data follow its seed"; the model's
# sizes and parameter target, whose null means "the family's default" (and "no target").
OPTIONAL_INT_KEYS = ("data_seed", *(f"model.{key}" for key in SIZE_KEYS))
OPTIONAL_FLOAT_KEYS = ("model.params",)
# Optional keys, absent from the defaults (so the ids of generated-data jobs do not change): a part's data
# source on disk, a mapping checked by ``harness.data.parse_spec`` here and against its files at expand.
DATA_KEYS = ("pretrain.data", "downstream.data")
LEAVES: dict[str, Any] = flatten(DEFAULTS)
MAX_INT = (1 << 63) - 1  # a job's values are int64 columns of jobs.parquet and results


class Where:
    """Formats 'file: key (line N)' locations for error messages."""

    def __init__(self, path: str, lines: dict[str, int]):
        self.path, self.lines = path, lines

    def fail(self, key: str, problem: str, fix: str) -> SweepError:
        """The error for the value at YAML location ``key`` (a dotted path such as ``matrix.model.width.1``)."""
        line = self.lines.get(key)
        at = f" (line {line})" if line else ""
        return SweepError(f"{self.path}: {key}{at}: {problem}; {fix}")

    def at_point(self, key: str, point: dict[str, Any], message: str) -> SweepError:
        """The error for config ``key`` at one matrix point: located where the point's value of ``key`` was
        written (its matrix, zip or include entry, else ``base``, else the default); ``message`` says what must
        hold and the fix."""
        sources = self._sources(key) if key in point else [f"base.{key}"]
        loc = next((loc for loc in sources if loc in self.lines), key)
        line = self.lines.get(loc)
        at = f" (line {line})" if line else ""
        values = ", ".join(f"{k}={v}" for k, v in point.items()) or "base"
        return SweepError(f"{self.path}: {loc}{at} at point ({values}): {message}")

    def _sources(self, key: str) -> list[str]:
        """Where a sweep file may set ``key``, most specific first."""
        zips = sorted({loc.split(".")[1] for loc in self.lines if loc.startswith("zip.")})
        includes = sorted({loc.split(".")[1] for loc in self.lines if loc.startswith("include.")})
        return [f"matrix.{key}", *(f"zip.{g}.{key}" for g in zips), *(f"include.{i}.{key}" for i in includes)]


def suggest(key: str, valid: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(key, valid, n=1)
    return f"did you mean `{close[0]}`?" if close else "valid keys: " + ", ".join(valid)


def check_key(key: str, where: Where, loc: str) -> None:
    """Raise unless `key` is a dotted config key (a group name or a typo gets a suggestion)."""
    if not isinstance(key, str):
        raise where.fail(loc, f"key {key!r} is not a name", "write a dotted key such as model.width")
    if key not in LEAVES and key not in DATA_KEYS:
        if any(leaf.startswith(key + ".") for leaf in LEAVES):
            raise where.fail(loc, f"`{key}` is a group, not a value", f"set one of its keys, e.g. `{key}.<key>`")
        raise where.fail(loc, f"unknown key `{key}`", suggest(key, list(LEAVES)))


def check_value(key: str, value: Any, where: Where, loc: str) -> Any:
    """Validate and normalise one value for config key `key`; returns the canonical value."""
    check_key(key, where, loc)
    if key in DATA_KEYS:
        return _check_data(key, value, where, loc)
    default = LEAVES[key]
    if key in SHIFT_KEYS:
        return _check_shift(value, where, loc)
    if key in OPTIONAL_INT_KEYS:
        return None if value is None else _check_int(key, value, where, loc)
    if key in OPTIONAL_FLOAT_KEYS:
        return None if value is None else _check_float(value, where, loc, minimum=1.0)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise where.fail(loc, f"expected true or false, got {value!r}", "write true or false")
        return value
    if isinstance(default, int):
        return _check_int(key, value, where, loc)
    if isinstance(default, float):
        value = _check_float(value, where, loc)
        if key.startswith("stream."):  # the stream group's bounds, located here (expand applies them per point)
            try:
                StreamConfig.from_dict({key.removeprefix("stream."): value})
            except HarnessError as exc:
                raise where.fail(loc, str(exc), "see `stream:` in docs/contracts.md") from None
        return value
    choices = CHOICES.get(key)
    if not isinstance(value, str) or (choices and value not in choices):
        raise where.fail(loc, f"invalid value {value!r}", "choose one of " + ", ".join(choices or ("a string",)))
    return value


def _check_data(key: str, value: Any, where: Where, loc: str) -> dict[str, Any] | None:
    """A data spec's keys and values (``harness.data.parse_spec``; no file is opened here), or None (generated)."""
    if value is None:
        return None
    try:
        parse_spec(value, where=key)
    except DataFileError as exc:
        raise where.fail(loc, str(exc), "see docs/data-files.md") from None
    return dict(value)


def _check_int(key: str, value: Any, where: Where, loc: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise where.fail(loc, f"expected an integer, got {value!r}", "write a whole number such as 16")
    if abs(value) > MAX_INT:
        raise where.fail(loc, f"{value} is out of range", f"use a whole number of at most {MAX_INT} (int64)")
    if key in POSITIVE_KEYS and value < 1:
        raise where.fail(loc, f"must be >= 1, got {value}", "use a positive number")
    if key in SEED_KEYS and value < 0:
        raise where.fail(loc, f"must be >= 0, got {value}", "use a seed >= 0, such as 0")
    if key == "resolution" and (value < 8 or value % 2):
        raise where.fail(loc, f"must be even and >= 8, got {value}", "use e.g. 32, 64 or 128")
    return value


def _check_float(value: Any, where: Where, loc: str, minimum: float = 0.0) -> float:
    if isinstance(value, str) and re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", value.strip()):
        value = float(value)  # YAML 1.1 reads 1e-3 (no dot) as a string
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise where.fail(loc, f"expected a number, got {value!r}", "write a number such as 1.0e-3")
    try:
        number = float(value)
    except OverflowError:  # an int beyond floating point
        number = math.inf
    if not math.isfinite(number):
        raise where.fail(loc, f"must be a finite number, got {value}", "write a number such as 1.0e-3")
    if number < minimum:
        raise where.fail(loc, f"must be >= {minimum:g}, got {value}",
                         f"use a number >= {minimum:g}" if minimum else "use a non-negative number")
    return number


def _check_shift(value: Any, where: Where, loc: str) -> str | list[float]:
    if isinstance(value, str):
        if value not in SHIFT_NAMES:
            raise where.fail(loc, f"unknown shift level {value!r}",
                             "choose one of " + ", ".join(SHIFT_NAMES) + " or an explicit [lo, hi] range")
        return value
    ok = isinstance(value, list) and len(value) == 2 and all(
        isinstance(v, float) or (isinstance(v, int) and not isinstance(v, bool) and abs(v) <= MAX_INT) for v in value)
    if not ok:
        raise where.fail(loc, f"invalid shift {value!r}", "give a level name or a [lo, hi] coefficient range")
    lo, hi = float(value[0]), float(value[1])
    if lo > hi:
        raise where.fail(loc, f"range [{lo}, {hi}] has lo > hi", "write the range as [lo, hi] with lo <= hi")
    return [lo, hi]


