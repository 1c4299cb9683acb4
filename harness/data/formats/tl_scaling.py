"""``tl-scaling``: the files of Subramanian et al. (2023), written by their ``utils/gen_data_*.py``.

Layout (one HDF5 file per split, e.g. ``_train_k1_5_32k.h5``, ``_val_...``, ``_test_...``; datasets at the
root, ``<f4``, contiguous):

- ``fields`` (N, 2, n, n): channel 0 the source f, channel 1 the solution u;
- ``tensor`` (N, C): the coefficients, 0.01 factor included -- Poisson C = 3 ``[k11, k22, k12]``;
  advection-diffusion C = 5 ``[(1 - lam) k11, (1 - lam) k22, (1 - lam) k12, lam v1, lam v2]``; Helmholtz
  C = 2 ``[0.01, omega]`` (the Laplacian's coefficient, then omega);
- ``other`` (N, 1), optional (advection-diffusion): the realised advection / diffusion ratio.

Axes: the generators sample on ``np.meshgrid(x, y)`` (indexing ``xy``), so ``fields[..., a, b]`` is at
``y = a / n``, ``x = b / n``; the harness stores x first, so the grids are transposed on reading (the
coefficients keep their meaning: k11 and v1 are the x entries). Equations and coefficient meanings are the
harness's own systems (``harness.pde.steady_systems``), so the system follows from C (or the spec's ``system``).

Coefficients map onto ``COMMON_CHANNELS`` = (k11, k22, k12, v1, v2, omega) by ``TENSOR_LAYOUT``; channels a
system lacks stay 0. Helmholtz's ``0.01`` fills k11 and k22 (k12 = 0): its Laplacian coefficient. Normalisation
is per instance, as for generated data. :func:`write_tl_scaling` writes generated samples in this layout.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any

import h5py
import numpy as np

from harness.data.files import Node, gather
from harness.data.formats.base import Layout, Reader, fail, same_grid, same_rows, shape_of, take
from harness.data.samples import Samples
from harness.errors import DataFileError
from harness.pde import COMMON_CHANNELS, SYSTEMS
from harness.store.atomic import write_atomic

# The COMMON_CHANNELS each column of ``tensor`` fills, per system.
TENSOR_LAYOUT = {
    "poisson": (("k11",), ("k22",), ("k12",)),
    "advection_diffusion": (("k11",), ("k22",), ("k12",), ("v1",), ("v2",)),
    "helmholtz": (("k11", "k22"), ("omega",)),
}
SYSTEM_OF_COLUMNS = {len(columns): system for system, columns in TENSOR_LAYOUT.items()}
HINT = "a tl-scaling file holds fields (N, 2, n, n) and tensor (N, C) at its root; is the format right?"


def to_common(tensor: np.ndarray, system: str) -> np.ndarray:
    """(n, len(COMMON_CHANNELS)) float64 coefficients from a (n, C) ``tensor`` of ``system``."""
    common = np.zeros((len(tensor), len(COMMON_CHANNELS)))
    for column, channels in enumerate(TENSOR_LAYOUT[system]):
        for channel in channels:
            common[:, COMMON_CHANNELS.index(channel)] = tensor[:, column]
    return common


def from_common(common: np.ndarray, system: str) -> np.ndarray:
    """The (n, C) ``tensor`` of ``system`` from (n, len(COMMON_CHANNELS)) coefficients: the inverse of
    :func:`to_common` (each column from the first channel it fills)."""
    return np.stack([common[:, COMMON_CHANNELS.index(channels[0])] for channels in TENSOR_LAYOUT[system]], axis=1)


def write_tl_scaling(path: str | os.PathLike, samples: Samples) -> Path:
    """Write steady samples of one harness system (e.g. ``samples_of(generated data)``) as a tl-scaling file,
    atomically: ``fields`` and ``tensor`` as ``<f4`` in the study's (y, x) axis order, one sample per chunk.
    Returns its path."""
    systems = set(np.unique(samples.system).tolist()) if samples.system is not None else set()
    if samples.channels != COMMON_CHANNELS or len(systems) != 1 or SYSTEMS[systems.pop()] not in TENSOR_LAYOUT:
        raise DataFileError(f"{path}: a tl-scaling file holds samples of one of {', '.join(TENSOR_LAYOUT)} in "
                            "the common channels; write other data with write_arrays")
    system = SYSTEMS[int(samples.system[0])]
    fields = np.concatenate([samples.fields, samples.targets], axis=1).swapaxes(-1, -2).astype("<f4")
    tensor = from_common(np.asarray(samples.coefficients), system).astype("<f4")

    def write(fh: IO[bytes]) -> None:
        with h5py.File(fh, "w") as f:
            f.create_dataset("fields", data=fields, chunks=(1, *fields.shape[1:]))
            f.create_dataset("tensor", data=tensor)

    return write_atomic(Path(path), write)


class TLScaling(Reader):
    name = "tl-scaling"

    def inspect(self, node: Node, options: dict[str, Any]) -> Layout:
        fields = shape_of(node, "fields", 4, "(N, 2, n, n): source and solution", HINT)
        tensor = shape_of(node, "tensor", 2, "(N, C): the coefficients", HINT)
        shapes = {"fields": fields, "tensor": tensor}
        if "other" in node.arrays:
            shapes["other"] = tuple(node.arrays["other"].shape)
        rows = same_rows(node, shapes)
        if fields[1] != 2:
            raise fail(node, f"dataset 'fields' has {fields[1]} channels, expected 2 (source, solution)")
        grid = same_grid(node, {"fields": fields[2:]})
        system = SYSTEM_OF_COLUMNS.get(tensor[1])
        if system is None:
            known = ", ".join(f"{s} {len(c)}" for s, c in TENSOR_LAYOUT.items())
            raise fail(node, f"dataset 'tensor' has {tensor[1]} columns; tl-scaling systems have {known}")
        if options.get("system", system) != system:
            raise fail(node, f"dataset 'tensor' has {tensor[1]} columns, so {system} data, but the spec says "
                             f"system: {options['system']}: fix the spec's system or the file")
        return Layout(rows, grid, fields=1, targets=1, channels=COMMON_CHANNELS, normalise="instance",
                      system=system, transpose=True)

    def read(self, node: Node, layout: Layout, rows: np.ndarray, positions: np.ndarray,
             options: dict[str, Any]) -> Samples:
        n, (nx, ny) = len(rows), layout.grid
        source, solution = np.empty((n, 1, nx, ny), np.float32), np.empty((n, 1, nx, ny), np.float32)

        def put(block: np.ndarray, pos: np.ndarray) -> None:
            source[pos, 0] = block[:, 0].swapaxes(-1, -2)
            solution[pos, 0] = block[:, 1].swapaxes(-1, -2)

        gather(node.arrays["fields"], rows, positions, put)
        coefficients = to_common(take(node.arrays["tensor"], rows, positions), layout.system)
        extras = {"other": take(node.arrays["other"], rows, positions)} if "other" in node.arrays else {}
        return Samples(source, coefficients, solution, COMMON_CHANNELS, "instance",
                       system=np.full(n, SYSTEMS.index(layout.system)), extras=extras)
