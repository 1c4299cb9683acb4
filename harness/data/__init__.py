"""The torch-free rules of data files: a data source's spec, plain data in a job's config, checked here before
any file is opened, and which parts of a sweep point draw their samples from files.

    {path: /data/poisson_ood.h5, format: tl-scaling}                       # one file; seeded disjoint splits
    {path: {train: a.h5, val: b.h5, test: c.h5}, format: tl-scaling}       # one file per split
    {path: ns.h5, format: pretraining-pdes, groups: {val: valid}}          # the file's own split groups

Keys of every format: ``path`` (a file, or a mapping from split to file), ``format`` (one of ``FORMATS``),
``fractions`` (``{val: 0.1, test: 0.1}``: the share of a file's rows held out for each split when one file
serves several splits; train takes the rest) and ``fingerprint`` (set by expand; :func:`harness.data.source.load`
refuses a file whose fingerprint no longer matches). Format keys (``FORMAT_OPTIONS``): ``system`` (tl-scaling:
which system the coefficients belong to, checked against their count), ``groups`` (pretraining-pdes: the group
holding each split), ``normalise`` (arrays: ``instance`` or ``channel``).

The rest of the package reads the files: at expand, :func:`harness.data.parts.resolve_part` checks a part's spec
against the files' headers (:func:`harness.data.source.check_source`); a job's data step calls
:func:`harness.data.source.load` for each split, getting :class:`~harness.data.samples.Samples` (steady formats)
or :class:`~harness.data.samples.Trajectories`. Layouts: ``harness.data.formats`` (one reader per format, named
in ``FORMAT_OPTIONS``); subsets: ``harness.data.subsets``; identity: ``harness.data.fingerprint``; files as
trees of arrays: ``harness.data.files``; samples as tensors: ``harness.data.tensors``.
"""

from __future__ import annotations

import errno
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import DataFileError
from harness.pde import SPLITS, SYSTEMS

# Each format's keys beyond COMMON_KEYS; its reader (``harness.data.formats``, of the same name) reads them.
FORMAT_OPTIONS: dict[str, tuple[str, ...]] = {"tl-scaling": ("system",), "pretraining-pdes": ("groups",),
                                              "pdebench-darcy": (), "arrays": ("normalise",)}
FORMATS = tuple(FORMAT_OPTIONS)
COMMON_KEYS = ("path", "format", "fractions", "fingerprint")
NORMALISATIONS = ("instance", "channel")
DEFAULT_FRACTIONS = {"val": 0.1, "test": 0.1}
PARTS = ("pretrain", "downstream")  # the parts of a sweep point that may take a `data` spec


def has_data(part: Any) -> bool:
    """Whether a part (``harness.job.Pretrain`` or ``Downstream``) draws its samples from files (its ``data`` spec
    is set)."""
    return part.data is not None


@dataclass(frozen=True)
class Spec:
    """A checked spec: ``paths`` maps every split the spec serves to an absolute file path."""

    format: str
    paths: dict[str, str]
    fractions: dict[str, float]
    options: dict[str, Any] = field(default_factory=dict)
    fingerprint: str | None = None

    def resolved(self, fingerprint: str | None) -> dict[str, Any]:
        """The spec as a job's config holds it: absolute paths and the fingerprint of the files."""
        files = set(self.paths.values())
        path: str | dict[str, str] = files.pop() if len(files) == 1 and len(self.paths) == len(SPLITS) \
            else dict(self.paths)
        return {"path": path, "format": self.format, "fractions": dict(self.fractions), **self.options,
                "fingerprint": fingerprint}

    def to_dict(self) -> dict[str, Any]:
        """The spec as plan.json holds it (``resolved`` with its own fingerprint)."""
        return self.resolved(self.fingerprint)


def _fail(where: str, message: str) -> DataFileError:
    return DataFileError(f"{where}: {message}")


def _paths(value: object, where: str, base: Path) -> dict[str, str]:
    def absolute(p: object, key: str) -> str:
        if not isinstance(p, str | os.PathLike) or not str(p):
            raise _fail(key, f"must be a file path, got {p!r}")
        try:
            return str((base / Path(p).expanduser()).resolve())
        except (RuntimeError, OSError, ValueError) as err:  # a loop of links (RuntimeError before Python 3.13)
            loop = "loop" in str(err) or getattr(err, "errno", None) == errno.ELOOP
            why = "is a symbolic link loop" if loop else f"cannot be resolved ({err})"
            raise _fail(key, f"{p} {why}: point the path at the data file itself") from None

    if isinstance(value, Mapping):
        unknown = sorted(set(value) - set(SPLITS))
        if unknown or not value:
            raise _fail(f"{where}.path", f"a mapping must name splits ({', '.join(SPLITS)}), got keys "
                                         f"{sorted(value) or 'none'}")
        paths = {s: absolute(value[s], f"{where}.path.{s}") for s in SPLITS if s in value}
        same = [s for s in paths if list(paths.values()).count(paths[s]) > 1]
        if same:
            raise _fail(f"{where}.path", f"splits {', '.join(same)} name the same file {paths[same[0]]}: give "
                                         "one path (not a mapping) to draw disjoint splits from one file")
        return paths
    return dict.fromkeys(SPLITS, absolute(value, f"{where}.path"))


def _fractions(value: object, where: str) -> dict[str, float]:
    if value is None:
        return dict(DEFAULT_FRACTIONS)
    held = ("val", "test")
    if not isinstance(value, Mapping) or set(value) - set(held):
        raise _fail(f"{where}.fractions", f"must map val and/or test to a fraction of the rows, got {value!r}")
    out = {**DEFAULT_FRACTIONS, **value}
    for key, f in out.items():
        if isinstance(f, bool) or not isinstance(f, int | float) or not math.isfinite(f) or not 0 < f < 1:
            raise _fail(f"{where}.fractions.{key}", f"must be a number in (0, 1), got {f!r}")
    if sum(out.values()) >= 1:
        raise _fail(f"{where}.fractions", f"val + test must be < 1 so that train keeps rows, got {out}")
    return {k: float(v) for k, v in out.items()}


def _options(fmt: str, spec: Mapping[str, Any], where: str) -> dict[str, Any]:
    options = {k: spec[k] for k in FORMAT_OPTIONS[fmt] if k in spec}
    if "system" in options and options["system"] not in SYSTEMS:
        raise _fail(f"{where}.system", f"unknown system {options['system']!r}: choose one of {', '.join(SYSTEMS)}")
    if "normalise" in options and options["normalise"] not in NORMALISATIONS:
        raise _fail(f"{where}.normalise", f"must be one of {', '.join(NORMALISATIONS)}, got "
                                          f"{options['normalise']!r}")
    if "groups" in options:
        groups = options["groups"]
        if not isinstance(groups, Mapping) or set(groups) - set(SPLITS) or \
                not all(isinstance(g, str) and g for g in groups.values()):
            raise _fail(f"{where}.groups", f"must map splits ({', '.join(SPLITS)}) to group names, got {groups!r}")
        options["groups"] = dict(groups)
    return options


def parse_spec(spec: object, *, where: str = "data", base: str | os.PathLike | None = None) -> Spec:
    """Check a data spec's keys and values (no file is opened); relative paths are taken from ``base``
    (default: the working directory). Raises DataFileError naming ``where`` and the key. A ``Spec`` is returned
    as it is (a job's config holds its data source checked)."""
    if isinstance(spec, Spec):
        return spec
    if not isinstance(spec, Mapping):
        raise _fail(where, f"must be a mapping like {{path: file.h5, format: tl-scaling}}, got {spec!r}")
    fmt = spec.get("format")
    if fmt not in FORMATS:
        raise _fail(f"{where}.format", f"must be one of {', '.join(FORMATS)}, got {fmt!r}")
    allowed = (*COMMON_KEYS, *FORMAT_OPTIONS[fmt])
    unknown = sorted(set(spec) - set(allowed))
    if unknown:
        raise _fail(where, f"unknown key(s) {', '.join(map(str, unknown))} for format {fmt}: allowed "
                           f"{', '.join(allowed)}")
    if "path" not in spec:
        raise _fail(where, "needs path: the data file (or {train: ..., val: ..., test: ...})")
    fingerprint = spec.get("fingerprint")
    if fingerprint is not None and not isinstance(fingerprint, str):
        raise _fail(f"{where}.fingerprint", f"must be a string (set by expand), got {fingerprint!r}")
    base_dir = Path(base) if base is not None else Path.cwd()
    return Spec(fmt, _paths(spec["path"], where, base_dir), _fractions(spec.get("fractions"), where),
                _options(fmt, spec, where), fingerprint)
