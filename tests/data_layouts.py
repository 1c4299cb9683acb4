"""Small files in each documented layout, written as each project's own code writes them (test helpers)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np


def tl_scaling(path: Path, fields: np.ndarray, tensor: np.ndarray, other: np.ndarray | None = None) -> Path:
    """The first study's ``create_hdf5``: ``fields`` (N, 2, n, n) and ``tensor`` (N, C) as ``<f4`` at the root,
    ``other`` (N, 1) for advection-diffusion. Arrays are given in the file's own (y, x) axis order."""
    with h5py.File(path, "w") as f:
        f.create_dataset("fields", data=fields, dtype="<f4")
        f.create_dataset("tensor", data=tensor, dtype="<f4")
        if other is not None:
            f.create_dataset("other", data=other, dtype="<f4")
    return path


def darcy(path: Path, nu: np.ndarray, solution: np.ndarray) -> Path:
    """PDEBench's merged Darcy file: ``nu`` (N, n, n), ``tensor`` (N, 1, n, n) and the coordinates."""
    n = nu.shape[-1]
    with h5py.File(path, "w") as f:
        f["nu"] = nu
        f["tensor"] = solution
        f["x-coordinate"] = (np.arange(n) + 0.5) / n
        f["y-coordinate"] = (np.arange(n) + 0.5) / n
        f["t-coordinate"] = np.array([0.0, 1.0])
    return path


def trajectories(path: Path, groups: dict[str, int], nt: int = 3, nx: int = 6, ny: int = 4, *, seed: int = 0,
                 indexing: str = "xy") -> dict[str, dict[str, np.ndarray]]:
    """The second study's ``2D_combined.py`` file: per group ``u`` (N, nt, a, b), ``x`` (2, a, b) from
    ``np.meshgrid(x, y, indexing)``, ``t`` (nt,), coefficients ``nu, ax, ay, cx, cy`` (N,). With ``xy``
    (theirs) the stored grid axes are (y, x). Returns what was written, per group."""
    rng = np.random.default_rng(seed)
    xs, ys = np.linspace(-1, 1, nx), np.linspace(-1, 0, ny)
    grid = np.stack(np.meshgrid(xs, ys, indexing=indexing)).astype("f4")
    written = {}
    with h5py.File(path, "w") as f:
        for name, n in groups.items():
            g = f.create_group(name)
            arrays = {"u": rng.standard_normal((n, nt, *grid.shape[1:])).astype("f4"), "x": grid,
                      "t": np.linspace(0, 2, nt).astype("f4"),
                      **{c: rng.uniform(0.1, 2.5, n).astype("f4") for c in ("nu", "ax", "ay", "cx", "cy")}}
            for key, value in arrays.items():
                g.create_dataset(key, data=value, dtype="f4")
            written[name] = arrays
    return written


def arrays_h5(path: Path, inputs: np.ndarray, targets: np.ndarray, coefficients: np.ndarray | None = None) -> Path:
    """A plain ``arrays`` HDF5 file as a user writes it: datasets at the root, no attributes."""
    with h5py.File(path, "w") as f:
        f["inputs"] = inputs
        f["targets"] = targets
        if coefficients is not None:
            f["coefficients"] = coefficients
    return path
