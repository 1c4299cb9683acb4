"""``arrays``: the harness's plain layout for any steady data, and its writer.

Layout (HDF5 datasets at the root, or ``.npz`` members of the same names):

- ``inputs`` (N, C, n, n): spatial input channels;
- ``targets`` (N, C', n, n): what the model predicts;
- ``coefficients`` (N, K), optional: constant per-sample coefficients, broadcast as K more input channels;
- attributes (HDF5 attributes, or an ``attrs`` member holding JSON in a ``.npz``), optional:
  ``coefficient_channels`` (K names) and ``normalise`` (``instance``: C = 1 is a forcing the targets are
  linear in, as for the harness's systems; ``channel``: per-channel scales, the default). The spec's
  ``normalise`` wins over the file's.

Grids are square, x first (``a[..., i, j]`` at ``x = i / n``, ``y = j / n``). :func:`write_arrays` writes the
layout (HDF5 chunked one sample per chunk, so reading a sample reads one chunk), atomically.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import h5py
import numpy as np

import harness
from harness.data.files import Node, gather
from harness.data.formats.base import Layout, Reader, fail, into, names, same_grid, same_rows, shape_of, take
from harness.data.samples import Samples
from harness.errors import DataFileError
from harness.store.atomic import write_atomic

HINT = "an arrays file holds inputs (N, C, n, n) and targets (N, C', n, n); is the format right?"


class Arrays(Reader):
    name = "arrays"

    def inspect(self, node: Node, options: dict[str, Any]) -> Layout:
        inputs = shape_of(node, "inputs", 4, "(N, C, n, n)", HINT)
        targets = shape_of(node, "targets", 4, "(N, C', n, n)", HINT)
        shapes = {"inputs": inputs, "targets": targets}
        if "coefficients" in node.arrays:
            shapes["coefficients"] = shape_of(node, "coefficients", 2, "(N, K)", HINT)
        rows = same_rows(node, shapes)
        grid = same_grid(node, {"inputs": inputs[2:], "targets": targets[2:]})
        k = shapes["coefficients"][1] if "coefficients" in shapes else 0
        channels = names(node.attrs["coefficient_channels"]) if "coefficient_channels" in node.attrs \
            else tuple(f"c{i}" for i in range(k))
        if len(channels) != k:
            raise fail(node, f"attribute coefficient_channels names {len(channels)} channels but 'coefficients' "
                             f"has {k} columns")
        normalise = options.get("normalise") or str(node.attrs.get("normalise", "channel"))
        if normalise not in ("instance", "channel"):
            raise fail(node, f"attribute normalise is {normalise!r}: use instance or channel")
        if normalise == "instance" and inputs[1] != 1:
            raise fail(node, f"normalise: instance needs one input field (the forcing), 'inputs' has {inputs[1]} "
                             "channels: use normalise: channel")
        return Layout(rows, grid, fields=inputs[1], targets=targets[1], channels=channels, normalise=normalise)

    def read(self, node: Node, layout: Layout, rows: np.ndarray, positions: np.ndarray,
             options: dict[str, Any]) -> Samples:
        n, (nx, ny) = len(rows), layout.grid
        fields = np.empty((n, layout.fields, nx, ny), np.float32)
        targets = np.empty((n, layout.targets, nx, ny), np.float32)
        gather(node.arrays["inputs"], rows, positions, into(fields))
        gather(node.arrays["targets"], rows, positions, into(targets))
        coefficients = take(node.arrays["coefficients"], rows, positions) if layout.channels else np.zeros((n, 0))
        return Samples(fields, coefficients, targets, layout.channels, layout.normalise)


def write_arrays(path: str | os.PathLike, inputs: np.ndarray, targets: np.ndarray,
                 coefficients: np.ndarray | None = None, *, channels: Sequence[str] | None = None,
                 normalise: str = "channel") -> Path:
    """Write an ``arrays`` file (``.h5``/``.hdf5`` or ``.npz``, by suffix) atomically; returns its path.

    ``inputs`` (N, C, n, n), ``targets`` (N, C', n, n), ``coefficients`` (N, K) or None, ``channels`` the K
    coefficient names, ``normalise`` the file's rule (``instance`` for the harness's generated systems).
    """
    path = Path(path)
    if path.suffix not in (".h5", ".hdf5", ".npz"):
        raise DataFileError(f"{path}: an arrays file ends in .h5, .hdf5 or .npz")
    arrays = {"inputs": np.asarray(inputs), "targets": np.asarray(targets)}
    if coefficients is not None:
        arrays["coefficients"] = np.asarray(coefficients)
    attrs = {"format": "arrays", "normalise": normalise, "harness_version": harness.__version__}
    if channels is not None:
        attrs["coefficient_channels"] = list(channels)
    Arrays().inspect(Node(str(path), arrays, {}, attrs), {})  # refuse what the reader would refuse
    def write(fh: IO[bytes]) -> None:
        if path.suffix == ".npz":
            np.savez(fh, **arrays, attrs=np.array(json.dumps(attrs)))
            return
        with h5py.File(fh, "w") as f:
            for name, a in arrays.items():
                f.create_dataset(name, data=a, chunks=(1, *a.shape[1:]) if a.ndim == 4 else None)
            f.attrs.update(attrs)

    return write_atomic(path, write)
