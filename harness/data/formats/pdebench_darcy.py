"""``pdebench-darcy``: PDEBench's 2D Darcy flow files (``2D_DarcyFlow_beta<b>_Train.hdf5``).

Layout (HDF5, datasets at the root), as PDEBench's ``data_gen/data_gen_NLE/Data_Merge.py`` writes them and
its ``models/fno/utils.py`` reads them:

- ``nu`` (N, n, n): the coefficient field a(x, y) of -div(a grad u) = beta (the input);
- ``tensor`` (N, 1, n, n): the solution u (the target; the 1 is PDEBench's time axis);
- ``x-coordinate`` (n,), ``y-coordinate`` (n,), ``t-coordinate``: checked against the grid when present.

Axes: PDEBench builds its grid with ``meshgrid(x, y, indexing="ij")``, x first, as the harness does, so
nothing is transposed. The forcing beta is one constant per file (in its name), so it is no input channel.
The input is one spatially varying field and no coefficient channels; normalisation is per channel, not per
instance (see ``harness.data.samples``). Splits: PDEBench itself tests on the first 10% of the rows; here
the splits are the seeded regions of ``harness.data.subsets`` like any single file.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.data.files import Node, gather
from harness.data.formats.base import Layout, Reader, fail, into, same_grid, same_rows, shape_of
from harness.data.samples import Samples

HINT = "a pdebench-darcy file holds nu (N, n, n) and tensor (N, 1, n, n) at its root; is the format right?"


class PDEBenchDarcy(Reader):
    name = "pdebench-darcy"

    def inspect(self, node: Node, options: dict[str, Any]) -> Layout:
        nu = shape_of(node, "nu", 3, "(N, n, n): the coefficient field", HINT)
        tensor = shape_of(node, "tensor", 4, "(N, 1, n, n): the solution", HINT)
        rows = same_rows(node, {"nu": nu, "tensor": tensor})
        if tensor[1] != 1:
            raise fail(node, f"dataset 'tensor' has shape {tensor}, expected (N, 1, n, n): one solution field")
        grid = same_grid(node, {"nu": nu[1:], "tensor": tensor[2:]})
        for axis, key in enumerate(("x-coordinate", "y-coordinate")):
            if key in node.arrays and tuple(node.arrays[key].shape) != (grid[axis],):
                raise fail(node, f"dataset {key!r} has shape {tuple(node.arrays[key].shape)}, expected "
                                 f"({grid[axis]},) for the {grid[0]}x{grid[1]} grid")
        return Layout(rows, grid, fields=1, targets=1, normalise="channel")

    def read(self, node: Node, layout: Layout, rows: np.ndarray, positions: np.ndarray,
             options: dict[str, Any]) -> Samples:
        n, (nx, ny) = len(rows), layout.grid
        field, solution = np.empty((n, 1, nx, ny), np.float32), np.empty((n, 1, nx, ny), np.float32)
        gather(node.arrays["nu"], rows, positions, into(field[:, 0]))
        gather(node.arrays["tensor"], rows, positions, into(solution))
        return Samples(field, np.zeros((n, 0)), solution, (), "channel")
