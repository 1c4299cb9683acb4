"""The sweep file: defaults, schema and validation.

A sweep file is YAML with `name`, `base`, `matrix`, `zip`, `exclude`, `include` (and `slurm`, passed to that
backend). Every key is checked against `DEFAULTS` before anything runs; errors name the file, the key, the
line where the YAML parser gives it, and the fix.
"""

from __future__ import annotations

import copy
import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.config import CHOICES as TRAIN_CHOICES
from harness.config import TrainConfig
from harness.errors import SweepError
from harness.pde.systems import TIME_MIXED, TIME_SYSTEMS
from harness.tasks.spec import STRATEGIES, TASK_DEFAULTS, TASKS, TIME_LEVELS

TRAIN_DEFAULTS: dict[str, Any] = TrainConfig().to_dict()

DEFAULTS: dict[str, Any] = {
    **TASK_DEFAULTS,  # task, time_window, target, unroll, nt, horizon (harness.tasks.spec)
    "resolution": 128,
    "data_seed": 0,
    "seed": 0,
    "init": "pretrained",
    "model": {"width": 32, "modes": 8},
    "pretrain": {
        "system": "poisson",
        "shift": "id",
        "strategy": "supervised",
        "mask_ratio": 0.75,
        "mask_patches": 8,
        "seed": 0,
        "n_train": 32768,
        "n_val": 4096,
        "n_test": 4096,
        "train": dict(TRAIN_DEFAULTS),
    },
    "downstream": {
        "system": "poisson",
        "shift": "id",
        "n_train": 1024,
        "n_val": 4096,  # validation samples, unless n_val_fraction is set
        "n_val_fraction": 0.0,  # > 0: n_val = max(n_val_min, ceil(n_val_fraction * n_train)), resolved at expand
        "n_val_min": 16,
        "n_test": 4096,
    },
    "train": dict(TRAIN_DEFAULTS),
}

SYSTEMS = ("poisson", "advection_diffusion", "helmholtz")
SHIFT_NAMES = tuple(dict.fromkeys(("id", "moderate", "large", "advection", "diffusion", *TIME_LEVELS)))
CHOICES: dict[str, tuple[str, ...]] = {
    "task": TASKS,
    "init": ("pretrained", "scratch", "zeroshot"),
    "pretrain.system": (*SYSTEMS, "mixed", *TIME_SYSTEMS, TIME_MIXED),
    "pretrain.strategy": STRATEGIES,
    "downstream.system": (*SYSTEMS, *TIME_SYSTEMS),
    **{f"train.{k}": v for k, v in TRAIN_CHOICES.items()},
    **{f"pretrain.train.{k}": v for k, v in TRAIN_CHOICES.items()},
}
# Keys whose value is a shift: a named level or an explicit [lo, hi] coefficient range.
SHIFT_KEYS = ("pretrain.shift", "downstream.shift")
# Integer keys that must be >= 1 (sizes) or even and >= 8 (grid).
POSITIVE_KEYS = ("model.width", "model.modes", "train.epochs", "train.batch_size", "pretrain.train.epochs",
                 "pretrain.train.batch_size", "pretrain.n_train", "pretrain.n_val", "pretrain.n_test",
                 "pretrain.mask_patches", "downstream.n_train", "downstream.n_val", "downstream.n_val_min",
                 "downstream.n_test")
TOP_KEYS = ("name", "description", "base", "matrix", "zip", "exclude", "include", "slurm", "tune")
MAX_JOBS = 100_000


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dict -> {dotted.key: leaf value}."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, path + "."))
        else:
            out[path] = value
    return out


def set_dotted(tree: dict[str, Any], key: str, value: Any) -> None:
    """Assign `value` at dotted `key` inside a nested dict (in place)."""
    *parents, leaf = key.split(".")
    for part in parents:
        tree = tree.setdefault(part, {})
    tree[leaf] = value


LEAVES: dict[str, Any] = flatten(DEFAULTS)


@dataclass(frozen=True)
class Sweep:
    """A validated sweep: axes hold already-validated value lists; `lines` maps dotted keys to YAML lines."""

    name: str
    path: str
    base: dict[str, Any]
    matrix: dict[str, list[Any]]
    zips: list[dict[str, list[Any]]]
    exclude: list[dict[str, Any]]
    include: list[dict[str, Any]]
    slurm: dict[str, Any]
    raw: dict[str, Any] = field(repr=False)
    tune: dict[str, Any] | None = None

    @property
    def axes(self) -> list[str]:
        """Every axis that varies, matrix first then zip groups, in file order."""
        return [*self.matrix, *(k for group in self.zips for k in group)]


class Where:
    """Formats 'file: key (line N)' locations for error messages."""

    def __init__(self, path: str, lines: dict[str, int]):
        self.path, self.lines = path, lines

    def fail(self, key: str, problem: str, fix: str) -> SweepError:
        line = self.lines.get(key)
        at = f" (line {line})" if line else ""
        return SweepError(f"{self.path}: {key}{at}: {problem}; {fix}")


def _node_lines(node: yaml.Node, prefix: str = "") -> dict[str, int]:
    """Dotted key -> 1-based line of every mapping key and sequence item in a composed YAML tree."""
    lines: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = f"{prefix}{key_node.value}"
            lines[key] = key_node.start_mark.line + 1
            lines.update(_node_lines(value_node, key + "."))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            key = f"{prefix}{i}"
            lines[key] = item.start_mark.line + 1
            lines.update(_node_lines(item, key + "."))
    return lines


def read_yaml(path: str | Path) -> tuple[dict[str, Any], dict[str, int]]:
    """Safe-load a sweep file; returns (data, dotted-key -> line). Raises SweepError with the parser's line."""
    p = Path(path)
    if not p.is_file():
        raise SweepError(f"{p}: no such sweep file; check the path (sweeps live in sweeps/*.yaml)")
    text = p.read_text()
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SweepError(f"{p}{at}: YAML syntax error: {problem}; fix the YAML at that place") from None
    if not isinstance(data, dict):
        raise SweepError(f"{p}: a sweep file must be a mapping with at least `name:`; got {type(data).__name__}")
    return data, (_node_lines(node) if node is not None else {})


def _suggest(key: str, valid: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(key, valid, n=1)
    return f"did you mean `{close[0]}`?" if close else "valid keys: " + ", ".join(valid)


def check_key(key: str, where: Where, loc: str) -> None:
    """Raise unless `key` is a dotted config key (a group name or a typo gets a suggestion)."""
    if key not in LEAVES:
        if any(leaf.startswith(key + ".") for leaf in LEAVES):
            raise where.fail(loc, f"`{key}` is a group, not a value", f"set one of its keys, e.g. `{key}.<key>`")
        raise where.fail(loc, f"unknown key `{key}`", _suggest(key, list(LEAVES)))


def check_value(key: str, value: Any, where: Where, loc: str) -> Any:
    """Validate and normalise one value for config key `key`; returns the canonical value."""
    check_key(key, where, loc)
    default = LEAVES[key]
    if key in SHIFT_KEYS:
        return _check_shift(value, where, loc)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise where.fail(loc, f"expected true or false, got {value!r}", "write true or false")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise where.fail(loc, f"expected an integer, got {value!r}", "write a whole number such as 16")
        if key in POSITIVE_KEYS and value < 1:
            raise where.fail(loc, f"must be >= 1, got {value}", "use a positive number")
        if key == "resolution" and (value < 8 or value % 2):
            raise where.fail(loc, f"must be even and >= 8, got {value}", "use e.g. 32, 64 or 128")
        return value
    if isinstance(default, float):
        if isinstance(value, str) and re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", value.strip()):
            value = float(value)  # YAML 1.1 reads 1e-3 (no dot) as a string
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise where.fail(loc, f"expected a number, got {value!r}", "write a number such as 1.0e-3")
        if value < 0:
            raise where.fail(loc, f"must be >= 0, got {value}", "use a non-negative number")
        return float(value)
    choices = CHOICES.get(key)
    if not isinstance(value, str) or (choices and value not in choices):
        raise where.fail(loc, f"invalid value {value!r}", "choose one of " + ", ".join(choices or ("a string",)))
    return value


def _check_shift(value: Any, where: Where, loc: str) -> str | list[float]:
    if isinstance(value, str):
        if value not in SHIFT_NAMES:
            raise where.fail(loc, f"unknown shift level {value!r}",
                             "choose one of " + ", ".join(SHIFT_NAMES) + " or an explicit [lo, hi] range")
        return value
    ok = isinstance(value, list) and len(value) == 2 and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    if not ok:
        raise where.fail(loc, f"invalid shift {value!r}", "give a level name or a [lo, hi] coefficient range")
    lo, hi = float(value[0]), float(value[1])
    if lo > hi:
        raise where.fail(loc, f"range [{lo}, {hi}] has lo > hi", "write the range as [lo, hi] with lo <= hi")
    return [lo, hi]


def _expand_values(key: str, spec: Any, where: Where, loc: str) -> list[Any]:
    """An axis spec -> list of values. Helpers: {pow2: [a, b]} -> 2^a..2^b; {range: [a, b(, step)]} -> a..b."""
    check_key(key, where, loc)
    if isinstance(spec, dict):
        if len(spec) != 1 or next(iter(spec)) not in ("pow2", "range"):
            raise where.fail(loc, f"unknown range helper {sorted(spec)}",
                             "use {pow2: [lo, hi]} or {range: [lo, hi, step]}")
        (helper, args), = spec.items()
        if not (isinstance(args, list) and len(args) in (2, 3) and all(isinstance(a, int) for a in args)):
            raise where.fail(loc, f"{helper} needs integer bounds, got {args!r}", f"write {{{helper}: [lo, hi]}}")
        lo, hi, step = args[0], args[1], (args[2] if len(args) == 3 else 1)
        if lo > hi or step < 1:
            raise where.fail(loc, f"{helper} bounds {args} have lo > hi or step < 1", "write [lo, hi] with lo <= hi")
        values: list[Any] = list(range(lo, hi + 1, step))
        if helper == "pow2":
            values = [2**e for e in values]
    elif isinstance(spec, list):
        values = spec
    else:
        values = [spec]
    if not values:
        raise where.fail(loc, "empty axis", "give at least one value, or remove the axis")
    return [check_value(key, v, where, f"{loc}.{i}" if isinstance(spec, list) else loc) for i, v in enumerate(values)]


def _check_assignments(items: Any, section: str, axes: set[str] | None, where: Where) -> list[dict[str, Any]]:
    """`exclude` / `include`: lists of partial assignments {dotted key: value}."""
    if items is None:
        return []
    if not isinstance(items, list) or not all(isinstance(i, dict) and i for i in items):
        raise where.fail(section, "must be a list of non-empty mappings", f"write `{section}: [{{model.width: 64}}]`")
    out = []
    for i, item in enumerate(items):
        checked = {}
        for key, value in item.items():
            loc = f"{section}.{i}.{key}"
            if axes is not None and key not in axes:
                raise where.fail(loc, f"`{key}` is not an axis of this sweep",
                                 "exclude only names axes of `matrix`/`zip`: " + ", ".join(sorted(axes)))
            checked[key] = check_value(key, value, where, loc)
        out.append(checked)
    return out


def parse_sweep(data: dict[str, Any], lines: dict[str, int], path: str = "<sweep>") -> Sweep:
    """Validate a loaded sweep mapping and return a `Sweep`; raises SweepError naming the first problem."""
    where = Where(path, lines)
    for key in data:
        if key not in TOP_KEYS:
            raise where.fail(str(key), f"unknown top-level key `{key}`", _suggest(str(key), TOP_KEYS))
    name = data.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise where.fail("name", f"missing or invalid sweep name {name!r}",
                         "add `name: my-sweep` (letters, digits, - _ .)")
    base = data.get("base") or {}
    if not isinstance(base, dict):
        raise where.fail("base", "must be a mapping", "write `base:` followed by indented keys")
    base_flat = {}
    for key, value in flatten(base).items():
        base_flat[key] = check_value(key, value, where, f"base.{key}")
    # shifts given as lists are leaves, not nested mappings: flatten keeps lists intact, so this is exact.

    matrix_spec = data.get("matrix") or {}
    if not isinstance(matrix_spec, dict):
        raise where.fail("matrix", "must be a mapping of axis -> values", "write `matrix: {model.width: [16, 32]}`")
    matrix = {k: _expand_values(k, v, where, f"matrix.{k}") for k, v in matrix_spec.items()}

    zips: list[dict[str, list[Any]]] = []
    zip_spec = data.get("zip") or []
    if isinstance(zip_spec, dict):
        zip_spec = [zip_spec]
    if not isinstance(zip_spec, list):
        raise where.fail("zip", "must be a list of groups",
                         "write `zip: [{model.width: [16, 32], model.modes: [4, 8]}]`")
    seen = set(matrix)
    for g, group in enumerate(zip_spec):
        if not isinstance(group, dict) or not group:
            raise where.fail(f"zip.{g}", "a zip group must be a non-empty mapping", "write {axis: [values], ...}")
        expanded = {k: _expand_values(k, v, where, f"zip.{g}.{k}") for k, v in group.items()}
        lengths = {k: len(v) for k, v in expanded.items()}
        if len(set(lengths.values())) > 1:
            raise where.fail(f"zip.{g}", f"axes of unequal length {lengths}",
                             "give every axis of a zip group the same number of values")
        for k in expanded:
            if k in seen:
                raise where.fail(f"zip.{g}.{k}", f"axis `{k}` appears twice", "vary each axis in one place only")
            seen.add(k)
        zips.append(expanded)

    exclude = _check_assignments(data.get("exclude"), "exclude", seen, where)
    include = _check_assignments(data.get("include"), "include", None, where)
    slurm = data.get("slurm") or {}
    if not isinstance(slurm, dict):
        raise where.fail("slurm", "must be a mapping of resources", "write `slurm: {partition: gpu, time_min: 60}`")
    nested_base = copy.deepcopy(DEFAULTS)
    for key, value in base_flat.items():
        set_dotted(nested_base, key, value)
    from harness.tune import parse_tune  # tune validates its values with this module's checks

    return Sweep(name=name, path=path, base=nested_base, matrix=matrix, zips=zips, exclude=exclude,
                 include=include, slurm=slurm, raw=data, tune=parse_tune(data.get("tune"), where))


def load_sweep(path: str | Path) -> Sweep:
    """Read, parse and validate a sweep file."""
    data, lines = read_yaml(path)
    return parse_sweep(data, lines, str(path))
