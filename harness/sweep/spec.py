"""The sweep file: read, parsed and validated into a `Sweep`.

A sweep file is YAML with `name`, `base`, `matrix`, `zip`, `exclude`, `include`, `slurm` (that backend's
resources), `tune`, `track` (experiment trackers, `harness.track.settings`), `eval` (sources every trained job
is scored on, `harness.sweep.evals`) and `pack` (fused training, `harness.sweep.pack`). Every key and value is checked
against the schema (`harness.sweep.schema`) before anything runs; errors name the file, the key, the line where
the YAML parser gives it, and the fix. What holds between keys at each matrix point is checked when the points
are expanded (`harness.sweep.checks`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.backends import SlurmResources, SlurmSettingError
from harness.errors import SweepError
from harness.job import Pack
from harness.store import PLAIN_NAME
from harness.sweep.dotted import flatten, set_dotted
from harness.sweep.evals import parse_block
from harness.sweep.pack import parse_pack
from harness.sweep.schema import DATA_KEYS, DEFAULTS, Where, check_key, check_value, suggest
from harness.sweep.trackers import parse_track
from harness.sweep.tune import parse_tune
from harness.sweep.yamlload import compose_sweep_file

TOP_KEYS = ("name", "description", "base", "matrix", "zip", "exclude", "include", "slurm", "tune", "track", "eval",
            "pack")
MAX_JOBS = 100_000


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
    track: dict[str, dict[str, str]] = field(default_factory=dict)  # tracker name -> options
    evals: list[dict[str, Any]] = field(default_factory=list)  # `eval:` sources (harness.sweep.evals)
    pack: Pack | None = None  # fused training (harness.sweep.pack); None: off
    lines: dict[str, int] = field(default_factory=dict, repr=False)

    @property
    def where(self) -> Where:
        """Locates a key of this sweep file for error messages."""
        return Where(self.path, self.lines)

    @property
    def axes(self) -> list[str]:
        """Every axis that varies, matrix first then zip groups, in file order."""
        return [*self.matrix, *(k for group in self.zips for k in group)]


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
    try:
        text, node = compose_sweep_file(p)  # UTF-8, no duplicate keys, aliases bounded
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SweepError(f"{p}{at}: YAML syntax error: {problem}; fix the YAML at that place") from None
    if not isinstance(data, dict):
        raise SweepError(f"{p}: a sweep file must be a mapping with at least `name:`; got {type(data).__name__}")
    return data, (_node_lines(node) if node is not None else {})


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
            raise where.fail(str(key), f"unknown top-level key `{key}`", suggest(str(key), TOP_KEYS))
    name = data.get("name")
    if not isinstance(name, str) or not PLAIN_NAME.fullmatch(name):
        raise where.fail("name", f"missing or invalid sweep name {name!r}",
                         "add `name: my-sweep` (letters, digits, - _ .; at most 128)")
    matrix_spec = data.get("matrix") or {}
    if not isinstance(matrix_spec, dict):
        raise where.fail("matrix", "must be a mapping of axis -> values", "write `matrix: {model.width: [16, 32]}`")
    matrix = {k: _expand_values(k, v, where, f"matrix.{k}") for k, v in matrix_spec.items()}
    zips = _parse_zips(data.get("zip") or [], set(matrix), where)
    axes = {*matrix, *(k for group in zips for k in group)}
    return Sweep(name=name, path=path, base=_parse_base(data.get("base") or {}, where), matrix=matrix, zips=zips,
                 exclude=_check_assignments(data.get("exclude"), "exclude", axes, where),
                 include=_check_assignments(data.get("include"), "include", None, where),
                 slurm=_parse_slurm(data.get("slurm") or {}, where), raw=data,
                 tune=parse_tune(data.get("tune"), where), track=parse_track(data.get("track"), where),
                 evals=parse_block(data.get("eval"), path), pack=parse_pack(data.get("pack"), where), lines=lines)


def _parse_base(base: Any, where: Where) -> dict[str, Any]:
    """The nested defaults with the `base:` values checked and set on top."""
    if not isinstance(base, dict):
        raise where.fail("base", "must be a mapping", "write `base:` followed by indented keys")
    nested = copy.deepcopy(DEFAULTS)
    # shifts given as lists and data specs are leaves, not nested mappings: flatten keeps them intact.
    for key, value in flatten(base, leaves=DATA_KEYS).items():
        set_dotted(nested, key, check_value(key, value, where, f"base.{key}"))
    return nested


def _parse_zips(zip_spec: Any, seen: set[str], where: Where) -> list[dict[str, list[Any]]]:
    """`zip:` groups of axes of equal length, none varied elsewhere (``seen``: the matrix axes, extended)."""
    if isinstance(zip_spec, dict):
        zip_spec = [zip_spec]
    if not isinstance(zip_spec, list):
        raise where.fail("zip", "must be a list of groups",
                         "write `zip: [{model.width: [16, 32], model.modes: [4, 8]}]`")
    zips: list[dict[str, list[Any]]] = []
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
    return zips


def _parse_slurm(slurm: Any, where: Where) -> dict[str, Any]:
    """The `slurm:` block, checked by the Slurm backend's own `SlurmResources.from_dict`."""
    if not isinstance(slurm, dict):
        raise where.fail("slurm", "must be a mapping of resources", "write `slurm: {partition: gpu, time_min: 60}`")
    try:
        SlurmResources.from_dict(slurm)
    except SlurmSettingError as exc:
        loc = f"slurm.{exc.key}"
        line = where.lines.get(loc)
        raise SweepError(f"{where.path}: {loc}{f' (line {line})' if line else ''}: {exc}") from None
    return slurm


def load_sweep(path: str | Path) -> Sweep:
    """Read, parse and validate a sweep file."""
    data, lines = read_yaml(path)
    return parse_sweep(data, lines, str(path))
