"""Data sources on disk: :func:`check_source` (expand: headers only) and :func:`load` (a job's data step).

Both take the spec of :mod:`harness.data`. ``check_source`` reads no sample: it opens each file, checks
the layout of its format from the datasets' headers, that every split the job needs has that many rows in
its region (:mod:`harness.data.subsets`), and fingerprints the files (:mod:`harness.data.fingerprint`).
``load`` draws one split: it refuses a file whose fingerprint differs from the spec's (changed since
expand), reads only the rows drawn, refuses a file that changed while it was read, and NaN or inf in the
samples, and adds training statistics to a steady training split.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.data import Spec, parse_spec
from harness.data.files import Node, first_row, nonfinite, open_file
from harness.data.fingerprint import combined, fingerprint, stat_key
from harness.data.formats import READERS, Layout
from harness.data.samples import Samples, Trajectories, compute_stats
from harness.data.subsets import draw, regions
from harness.errors import DataFileError
from harness.pde import SPLITS


@dataclass(frozen=True)
class SourceInfo:
    """What :func:`check_source` found. ``spec``: the resolved spec a job's config holds (absolute paths,
    fractions, fingerprint); ``rows``: per split, the rows its region holds; ``layout``: the data's shape."""

    spec: dict[str, Any]
    format: str
    kind: str
    fingerprint: str
    paths: dict[str, str]
    rows: dict[str, int]
    layout: Layout

    @property
    def in_channels(self) -> int:
        """Input channels of a model on this data (steady formats): fields + coefficient channels."""
        return self.layout.fields + len(self.layout.channels)

    @property
    def out_channels(self) -> int:
        """Output channels of a model on this data (steady formats)."""
        return self.layout.targets


@dataclass(frozen=True)
class _Part:
    node: Node
    layout: Layout
    region: tuple[int, int]


@contextlib.contextmanager
def _at(where: str) -> Iterator[None]:
    """Prefix the DataFileErrors raised inside with ``where`` (the spec's place in the sweep)."""
    try:
        yield
    except DataFileError as err:
        raise DataFileError(f"{where}: {err}") from None


def _consistent(layouts: dict[str, Layout]) -> Layout:
    """The one layout of all a spec's groups (rows aside); DataFileError naming the first disagreement."""
    (first_label, first), *others = layouts.items()
    for label, layout in others:
        for f in dataclasses.fields(Layout):
            a, b = getattr(first, f.name), getattr(layout, f.name)
            if f.name != "rows" and a != b:
                raise DataFileError(f"{first_label} and {label} disagree on {f.name} ({a} vs {b}): every "
                                    "split's data must have the same layout")
    return first


@contextlib.contextmanager
def _parts(spec: Spec) -> Iterator[dict[str, _Part]]:
    """Open the spec's files; per split it serves, the group holding it, its layout and its region."""
    reader = READERS[spec.format]
    with contextlib.ExitStack() as stack:
        roots = {p: stack.enter_context(open_file(p)) for p in dict.fromkeys(spec.paths.values())}
        nodes = {split: reader.locate(roots[path], split, spec.options) for split, path in spec.paths.items()}
        served: dict[str, list[str]] = {}
        for split, node in nodes.items():
            if node is not None:
                served.setdefault(node.label, []).append(split)
        if not served:
            groups = ", ".join(sorted(set().union(*(r.groups for r in roots.values())))) or "none"
            raise DataFileError(f"{', '.join(roots)} holds no group for any split (groups: {groups}): name them "
                                "in groups")
        by_label = {nodes[splits[0]].label: nodes[splits[0]] for splits in served.values()}
        layouts = {label: reader.inspect(node, spec.options) for label, node in by_label.items()}
        _consistent(layouts)
        parts = {}
        for label, splits in served.items():
            for split, region in regions(layouts[label].rows, splits, spec.fractions).items():
                parts[split] = _Part(by_label[label], layouts[label], region)
        yield parts


def _require(spec: Spec, parts: dict[str, _Part], split: str, n: object) -> _Part:
    """The part serving ``split``, checked to hold ``n`` samples."""
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise DataFileError(f"n_{split} must be an integer >= 1, got {n!r}")
    if split not in parts:
        path = spec.paths.get(split)
        fix = f"name its group in groups.{split}" if path else f"add {split}: FILE to path"
        raise DataFileError(f"{path or 'path'} holds no {split} split: {fix}")
    part = parts[split]
    start, stop = part.region
    if n > stop - start:
        if (start, stop) == (0, part.layout.rows):
            held, fix = f"the {stop} rows it holds", "ask for fewer"
        else:
            out = " and ".join(f"{k} {v:g}" for k, v in spec.fractions.items())
            held = f"the {stop - start} of its {part.layout.rows} rows in the {split} region ({out} held out)"
            fix = "ask for fewer, change fractions, or give each split its own file"
        raise DataFileError(f"{part.node.label}: n_{split} = {n} is more than {held}: {fix}")
    return part


def _fingerprint(spec: Spec, cache_dir: str | None) -> str:
    current = combined([fingerprint(p, cache_dir=cache_dir) for p in dict.fromkeys(spec.paths.values())])
    if spec.fingerprint is not None and spec.fingerprint != current:
        files = ", ".join(dict.fromkeys(spec.paths.values()))
        raise DataFileError(f"{files} changed since its fingerprint {spec.fingerprint} was taken "
                            f"(now {current}): refusing to mix data; expand the sweep again to use the new file")
    return current


def check_source(spec: Mapping[str, Any], needs: Mapping[str, int], *, kind: str | None = None,
                 where: str = "data", base: str | None = None, cache_dir: str | None = None) -> SourceInfo:
    """Check a data spec against its files from their headers: the format's layout, and ``needs``
    (``{split: n}``, e.g. ``{"train": 512, "val": 64, "test": 256}``; 0 = not needed) within each split's
    region; ``kind`` (``steady`` / ``trajectory``) the data the job needs. Returns a :class:`SourceInfo`;
    raises DataFileError (one line naming ``where``, the file, the key and the fix)."""
    s = parse_spec(spec, where=where, base=base)
    reader = READERS[s.format]
    if kind is not None and reader.kind != kind:
        fits = ", ".join(name for name, r in READERS.items() if r.kind == kind)
        raise DataFileError(f"{where}.format: {s.format} holds {reader.kind} data, this job needs {kind} data: "
                            f"use {fits}")
    unknown = sorted(set(needs) - set(SPLITS))
    if unknown:
        raise DataFileError(f"{where}: needs names unknown splits {unknown}: use {', '.join(SPLITS)}")
    with _at(where), _parts(s) as parts:
        for split, n in needs.items():
            if n != 0:
                _require(s, parts, split, n)
        fp = _fingerprint(s, cache_dir)
        rows = {split: p.region[1] - p.region[0] for split, p in parts.items()}
    layout = next(iter(parts.values())).layout  # _parts checked that every split's layout agrees
    return SourceInfo(s.resolved(fp), s.format, reader.kind, fp, dict(s.paths), rows, layout)


def _refuse_nonfinite(label: str, split: str, indices: np.ndarray, arrays: dict[str, np.ndarray]) -> None:
    bad = {name: first_row(a, nonfinite) for name, a in arrays.items()}
    bad = {name: j for name, j in bad.items() if j is not None}
    if bad:
        name, j = min(bad.items(), key=lambda item: item[1])
        raise DataFileError(f"{label}: the {split} split's {name} hold NaN or inf at file row {indices[j]} "
                            f"(sample {j} of {len(indices)}): fix or drop that row in the file")


def _zero_target(block: np.ndarray) -> np.ndarray:
    """Per sample of a block of steady targets (n, C, X, Y): zero everywhere."""
    return ~block.reshape(len(block), -1).any(axis=1)


def _zero_frame(block: np.ndarray) -> np.ndarray:
    """Per trajectory of a block (n, nt, X, Y): one of its frames (each a target of some window) zero everywhere."""
    return ~block.reshape(*block.shape[:2], -1).any(axis=2).all(axis=1)


def _refuse_zero(label: str, split: str, indices: np.ndarray, data: Samples | Trajectories) -> None:
    """A zero target has no relative error (0 / 0): refused before training, with the row to drop."""
    steady = isinstance(data, Samples)
    j = first_row(data.targets, _zero_target) if steady else first_row(data.u, _zero_frame)
    if j is not None:
        what = "targets are" if steady else "trajectories have a frame that is"
        raise DataFileError(f"{label}: the {split} split's {what} zero at file row {indices[j]} (sample {j} of "
                            f"{len(indices)}): the relative error of a zero target is undefined: drop that row "
                            "from the file")


def load(spec: Mapping[str, Any], split: str, n: int, seed: int, *, where: str = "data", base: str | None = None,
         cache_dir: str | None = None) -> Samples | Trajectories:
    """The ``n`` samples of ``split`` (``train``/``val``/``test``) of a data source drawn with ``seed`` (the
    job's data seed; :mod:`harness.data.subsets`: the n = 64 set is a subset of the n = 128 one), in the
    file's row order (so a file holding exactly the samples asked gives them as written), as :class:`Samples`
    (steady formats; a training split carries ``stats``) or :class:`Trajectories`. ``indices`` holds each
    sample's file row, ``meta`` the path and fingerprint.

    Refuses (DataFileError) a file whose fingerprint differs from the spec's ``fingerprint``, a file that
    changes while it is read, NaN or inf in the samples drawn, and a zero target (steady) or frame (trajectories),
    whose relative error is undefined: a job never trains on a mixed or partial read, nor reports an error of
    0 / 0 as a divergence.
    """
    s = parse_spec(spec, where=where, base=base)
    if split not in SPLITS:
        raise DataFileError(f"{where}: unknown split {split!r}: choose one of {', '.join(SPLITS)}")
    reader = READERS[s.format]
    with _at(where):
        # Taken before opening: a file replaced at any later moment (even while open) differs after the read.
        before = {p: stat_key(p) for p in dict.fromkeys(s.paths.values())}
        with _parts(s) as parts:
            part = _require(s, parts, split, n)
            fp = _fingerprint(s, cache_dir)
            chosen = np.sort(draw(part.layout.rows, part.region, int(n), seed))
            try:
                data = reader.read(part.node, part.layout, chosen, np.arange(len(chosen)), s.options)
            except OSError as err:  # h5py's read errors: a truncated or damaged file
                raise DataFileError(f"{part.node.label}: reading the {split} split failed ({err}): is the file "
                                    "complete?") from err
        changed = [p for p, key in before.items() if stat_key(p) != key]
        if changed:
            raise DataFileError(f"{changed[0]} changed while it was read: refusing a partial read; expand the "
                                "sweep again once the file is complete")
        arrays = {"inputs": data.fields, "targets": data.targets, "coefficients": data.coefficients} \
            if isinstance(data, Samples) else {"trajectories": data.u, "coefficients": data.coefficients}
        _refuse_nonfinite(part.node.label, split, chosen, arrays)
        _refuse_zero(part.node.label, split, chosen, data)
    data.indices = chosen
    data.meta = {"format": s.format, "path": s.paths[split], "location": part.node.label, "split": split,
                 "fingerprint": fp, "seed": seed}
    if isinstance(data, Samples) and split == "train":
        data.stats = compute_stats(data)
    return data
