"""What every reader shares: the :class:`Layout` a header check finds, the reader interface, shape checks."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.data.files import Node, gather
from harness.data.samples import Samples, Trajectories
from harness.errors import DataFileError


@dataclass(frozen=True)
class Layout:
    """What a file's header says about one group of rows: ``rows``, the ``grid`` (X, Y) in the harness's axis
    order, input ``fields`` and ``targets`` channels and coefficient ``channels`` (steady formats),
    ``timesteps`` and their ``times`` (trajectories), the ``normalise`` rule and ``system`` where the format
    fixes them, and whether the file stores y before x (``transpose``: its arrays are transposed on reading)."""

    rows: int
    grid: tuple[int, int]
    fields: int = 0
    targets: int = 0
    channels: tuple[str, ...] = ()
    normalise: str | None = None
    system: str | None = None
    timesteps: int | None = None
    times: tuple[float, ...] | None = None
    transpose: bool = False


class Reader(ABC):
    """One documented file layout. ``name`` is the spec's ``format`` (``harness.data.FORMAT_OPTIONS`` lists the
    spec keys each format takes beyond those of every format); ``kind`` is ``steady`` (read as
    :class:`Samples`) or ``trajectory``."""

    name = ""
    kind = "steady"

    def locate(self, root: Node, split: str, options: dict[str, Any]) -> Node | None:
        """The group holding ``split``'s rows (None if the file has none for it); the root by default."""
        return root

    @abstractmethod
    def inspect(self, node: Node, options: dict[str, Any]) -> Layout:
        """Check the group's datasets from their headers only; DataFileError naming the key and the fix."""

    @abstractmethod
    def read(self, node: Node, layout: Layout, rows: np.ndarray, positions: np.ndarray,
             options: dict[str, Any]) -> Samples | Trajectories:
        """The samples at the sorted file ``rows``, the i-th going to output position ``positions[i]``."""


def fail(node: Node, message: str) -> DataFileError:
    return DataFileError(f"{node.label}: {message}")


def shape_of(node: Node, name: str, ndim: int, expected: str, hint: str) -> tuple[int, ...]:
    """The shape of dataset ``name``, which must have ``ndim`` dimensions (``expected`` spells them)."""
    shape = tuple(int(d) for d in node.require(name, hint).shape)
    if len(shape) != ndim:
        raise fail(node, f"dataset {name!r} has shape {shape}, expected {expected}")
    return shape


def same_rows(node: Node, shapes: dict[str, tuple[int, ...]]) -> int:
    """The common number of rows (first dimension) of the named datasets; DataFileError if they differ."""
    counts = {name: shape[0] for name, shape in shapes.items()}
    if len(set(counts.values())) > 1:
        listed = ", ".join(f"{k} {v}" for k, v in counts.items())
        raise fail(node, f"datasets disagree on the number of samples ({listed}): every dataset needs one row "
                         "per sample")
    rows = next(iter(counts.values()))
    if rows == 0:
        raise fail(node, f"dataset {next(iter(counts))!r} holds no samples")
    return rows


def same_grid(node: Node, shapes: dict[str, tuple[int, int]], square: bool = True) -> tuple[int, int]:
    """The common (X, Y) grid of the named datasets' last two dimensions (square unless ``square=False``)."""
    grids = {name: tuple(shape) for name, shape in shapes.items()}
    if len(set(grids.values())) > 1:
        listed = ", ".join(f"{k} {v[0]}x{v[1]}" for k, v in grids.items())
        raise fail(node, f"datasets disagree on the grid ({listed})")
    grid = next(iter(grids.values()))
    if square and grid[0] != grid[1]:
        raise fail(node, f"the grid is {grid[0]}x{grid[1]}: the steady pipeline needs square n x n grids "
                         "(resample the data)")
    return grid


def into(out: np.ndarray) -> Callable[[np.ndarray, np.ndarray], None]:
    """A :func:`gather` sink writing each block to ``out`` at its output positions (``out`` may be a view)."""
    def put(block: np.ndarray, positions: np.ndarray) -> None:
        out[positions] = block
    return put


def take(array: Any, rows: np.ndarray, positions: np.ndarray, dtype: type = np.float64) -> np.ndarray:
    """``array`` at the sorted ``rows``, in output order (for small per-sample arrays)."""
    out = np.empty((len(rows), *array.shape[1:]), dtype)
    gather(array, rows, positions, into(out))
    return out


def names(value: Any) -> tuple[str, ...]:
    """A list of names as stored in a file attribute (str, bytes or an array of either)."""
    items = [value] if isinstance(value, str | bytes) else list(np.asarray(value).ravel())
    return tuple(v.decode() if isinstance(v, bytes) else str(v) for v in items)
