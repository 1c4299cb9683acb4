"""Warnings at expand for a sweep that is valid but probably not what its author meant (pure: returns lines).

An ``exclude`` entry that matches no point of the matrix (a typo in a value drops nothing, silently), and a
sweep without axes (an empty or missing ``matrix:`` runs only the ``base:`` point).
"""

from __future__ import annotations

import dataclasses

from harness.sweep.expand import _points
from harness.sweep.spec import Sweep


def sweep_warnings(sweep: Sweep) -> list[str]:
    """One line per suspicious part of ``sweep``, naming the file, the key and its line."""
    out = []

    def at(loc: str) -> str:
        line = sweep.lines.get(loc)
        return f" (line {line})" if line else ""

    if not sweep.axes:
        out.append(f"{sweep.path}: matrix{at('matrix')}: no axes, so the sweep is the one point of `base:`; "
                   "add axes under `matrix:` if you meant a sweep")
    if sweep.exclude:
        unexcluded = dataclasses.replace(sweep, exclude=[], include=[])
        hits = [False] * len(sweep.exclude)
        for point in _points(unexcluded):
            for i, ex in enumerate(sweep.exclude):
                hits[i] = hits[i] or all(point.get(k) == v for k, v in ex.items())
            if all(hits):
                break
        for i, ex in enumerate(sweep.exclude):
            if not hits[i]:
                out.append(f"{sweep.path}: exclude.{i}{at(f'exclude.{i}')}: {ex} matches no point of the "
                           "matrix, so it removes nothing; check its values against the axes")
    return out
