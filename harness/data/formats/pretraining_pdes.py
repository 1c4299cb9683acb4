"""``pretraining-pdes``: the trajectory files of Zhou et al. (2024), written by their
``data_gen/2D_combined.py`` and read by their ``common/datasets.py`` (``PDEDataset2D``).

Layout (HDF5; one group per split, named ``train``, ``valid`` or ``test``, usually one file per split, e.g.
``Heat_Adv_Burgers_train_3072.h5`` holding group ``train``):

- ``u`` (N, nt, nx, ny) float32: the trajectories;
- ``nu``, ``ax``, ``ay``, ``cx``, ``cy`` (N,): the coefficients of heat (nu), advection (ax, ay) and Burgers
  (nu, cx, cy), 0 where a sample's equation lacks the term;
- or, in a Navier-Stokes group (their ``navier_stokes`` files, the ``ns`` set), ``visc`` and ``amp`` (N,), the
  viscosity and forcing amplitude (``harness.pde.navier_stokes``); their reader reads nu, ax, ay, cx, cy from
  these files too, which must then be 0 (a group mixing the equations is refused: split it);
- ``x`` (2, nx, ny): the coordinates of each grid point (x, then y); ``t`` (nt,): the saved times.

Axes: their generator samples on ``np.meshgrid(x, y)`` (indexing ``xy``), so ``x[0]`` varies along the last
axis; the reader looks at ``x`` and transposes the grids to the harness's x-first order where x runs along
the last axis. Grids need not be square. A split's group is ``groups[split]`` (default ``train``, ``valid``,
``test``), else the file's only group. Read as :class:`harness.data.Trajectories` (no normalisation
statistics: the tasks that train on trajectories define their own) whose channels are the group's family:
nu, ax, ay, cx, cy, or visc, amp (the layout's ``system`` is then navier_stokes, which labels the data).

:func:`write_pretraining_pdes` writes one group of this layout (x first: ``x`` from a meshgrid with indexing
``ij`` on the harness's grid ``i / n``, so nothing is transposed on reading; a Navier-Stokes group as theirs,
visc and amp with nu, ax, ay, cx, cy zero), atomically; ``harness data heat ... --out f.h5 --format
pretraining-pdes`` (or ``navier_stokes``) writes generated trajectories with it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any

import h5py
import numpy as np

import harness
from harness.data.files import Node, gather
from harness.data.formats.base import Layout, Reader, fail, same_grid, same_rows, shape_of, take
from harness.data.samples import Trajectories
from harness.errors import DataFileError
from harness.pde import NAVIER_STOKES, NS_COEFS, TIME_COEFS
from harness.store.atomic import write_atomic

COEFFICIENTS = TIME_COEFS  # their file keys are the harness's coefficient names (nu, ax, ay, cx, cy)
FAMILIES = (COEFFICIENTS, NS_COEFS)  # the coefficient channels a group holds: one family's
DEFAULT_GROUPS = {"train": "train", "val": "valid", "test": "test"}
HINT = ("a pretraining-pdes group holds u (N, nt, nx, ny), x (2, nx, ny), t (nt,) and nu, ax, ay, cx, cy (N,) "
        "(Navier-Stokes: visc, amp)")


def _x_runs_last(node: Node) -> bool:
    """Whether the x coordinate ``x[0]`` varies along the last axis (a meshgrid with indexing ``xy``)."""
    x0 = np.asarray(node.arrays["x"][0], dtype=np.float64)
    return bool(np.ptp(x0, axis=1).max(initial=0) > np.ptp(x0, axis=0).max(initial=0))


def _family(node: Node) -> tuple[tuple[str, ...], str | None]:
    """The group's coefficient channels and the system they fix (navier_stokes for visc and amp, else None)."""
    ns = [c for c in NS_COEFS if c in node.arrays]
    if not ns:
        return COEFFICIENTS, None
    if len(ns) == 1:
        raise fail(node, f"holds {ns[0]} but not {next(c for c in NS_COEFS if c not in ns)}: a Navier-Stokes group "
                         f"holds both {' and '.join(NS_COEFS)}")
    for name in (c for c in COEFFICIENTS if c in node.arrays):
        nonzero = np.flatnonzero(np.asarray(node.arrays[name][:]))
        if nonzero.size:
            raise fail(node, f"holds Navier-Stokes' {', '.join(NS_COEFS)} and a nonzero {name} (row {nonzero[0]}): a "
                             f"group holds one family, {', '.join(COEFFICIENTS)} or {', '.join(NS_COEFS)} (with "
                             f"{', '.join(COEFFICIENTS)} zero or absent): split the file by equation")
    return NS_COEFS, NAVIER_STOKES


def _times(node: Node, t: np.ndarray) -> tuple[float, ...]:
    """The frames' times, which must be finite and increasing (a task's frames are evenly spaced in them)."""
    if (bad := np.flatnonzero(~np.isfinite(t))).size:
        raise fail(node, f"dataset 't' holds {t[bad[0]]:g} at frame {bad[0]}: frame times must be finite and "
                         "increasing: fix t")
    if (back := np.flatnonzero(np.diff(t) <= 0)).size:
        i = int(back[0]) + 1
        raise fail(node, f"dataset 't' is not increasing ({t[i - 1]:g} then {t[i]:g} at frame {i}): frame times "
                         "must be finite and increasing: fix t")
    return tuple(float(v) for v in t)


class PretrainingPDEs(Reader):
    name = "pretraining-pdes"
    kind = "trajectory"

    def locate(self, root: Node, split: str, options: dict[str, Any]) -> Node | None:
        groups = {**DEFAULT_GROUPS, **options.get("groups", {})}
        if groups[split] in root.groups:
            return root.groups[groups[split]]
        if split in options.get("groups", {}):
            held = ", ".join(sorted(root.groups)) or "none"
            raise fail(root, f"has no group {groups[split]!r} for split {split} (groups: {held}): fix "
                             f"groups.{split}")
        return next(iter(root.groups.values())) if len(root.groups) == 1 else None

    def inspect(self, node: Node, options: dict[str, Any]) -> Layout:
        u = shape_of(node, "u", 4, "(N, nt, nx, ny): the trajectories", HINT)
        shapes = {"u": u}
        channels, system = _family(node)
        for name in channels:
            shapes[name] = shape_of(node, name, 1, "(N,): one coefficient per trajectory", HINT)
        rows = same_rows(node, shapes)
        x = shape_of(node, "x", 3, "(2, nx, ny): the grid's coordinates", HINT)
        t = shape_of(node, "t", 1, "(nt,): the saved times", HINT)
        if x[0] != 2 or x[1:] != u[2:]:
            raise fail(node, f"dataset 'x' has shape {x}, expected (2, {u[2]}, {u[3]}) for u of shape {u}")
        if t[0] != u[1]:
            raise fail(node, f"dataset 't' has {t[0]} times but u has {u[1]} per trajectory")
        transpose = _x_runs_last(node)
        grid = same_grid(node, {"u": u[:1:-1] if transpose else u[2:]}, square=False)
        times = _times(node, np.asarray(node.arrays["t"][:], np.float64))
        return Layout(rows, grid, channels=channels, system=system, timesteps=u[1], times=times, transpose=transpose)

    def read(self, node: Node, layout: Layout, rows: np.ndarray, positions: np.ndarray,
             options: dict[str, Any]) -> Trajectories:
        u = np.empty((len(rows), layout.timesteps, *layout.grid), np.float32)

        def put(block: np.ndarray, pos: np.ndarray) -> None:
            u[pos] = block.swapaxes(-1, -2) if layout.transpose else block

        gather(node.arrays["u"], rows, positions, put)
        coefficients = np.stack([take(node.arrays[c], rows, positions) for c in layout.channels], axis=1)
        grid = np.asarray(node.arrays["x"][:], dtype=np.float64)
        if layout.transpose:
            grid = grid.swapaxes(-1, -2)
        return Trajectories(u, coefficients, layout.channels, np.asarray(node.arrays["t"][:], np.float64), grid)


def write_pretraining_pdes(path: str | os.PathLike, u: np.ndarray, coefficients: np.ndarray, t: np.ndarray, *,
                           group: str = "train", channels: tuple[str, ...] = COEFFICIENTS) -> Path:
    """Write trajectories as a ``pretraining-pdes`` file (``.h5``/``.hdf5``) holding one ``group``, atomically;
    returns its path. ``u`` (N, nt, n, n) in the harness's axis order, ``coefficients`` (N, C) in ``channels``
    order (``COEFFICIENTS``, or ``NS_COEFS`` for Navier-Stokes, whose group also gets nu, ax, ay, cx, cy as zeros,
    as theirs), ``t`` (nt,) the frames' times; each array keeps its dtype (``u`` chunked one trajectory per
    chunk)."""
    path = Path(path)
    if path.suffix not in (".h5", ".hdf5"):
        raise DataFileError(f"{path}: a pretraining-pdes file is HDF5: end its name in .h5 or .hdf5")
    if tuple(channels) not in FAMILIES:
        raise DataFileError(f"{path}: channels must be {' or '.join(', '.join(f) for f in FAMILIES)}, got {channels}")
    u, coefficients = np.asarray(u), np.asarray(coefficients)
    if coefficients.ndim != 2 or coefficients.shape[1] != len(channels):
        raise DataFileError(f"{path}: coefficients must be (N, {len(channels)}) in the order "
                            f"{', '.join(channels)}, got shape {coefficients.shape}")
    axis = np.arange(u.shape[-1]) / u.shape[-1]
    zeros = {c: np.zeros(len(coefficients), coefficients.dtype) for c in COEFFICIENTS if c not in channels}
    arrays = {"u": u, "x": np.stack(np.meshgrid(axis, axis, indexing="ij")), "t": np.asarray(t), **zeros,
              **{c: coefficients[:, i] for i, c in enumerate(channels)}}
    PretrainingPDEs().inspect(Node(f"{path}[{group}]", arrays, {}, {}), {})  # refuse what the reader would refuse

    def write(fh: IO[bytes]) -> None:
        with h5py.File(fh, "w") as f:
            g = f.create_group(group)
            for name, a in arrays.items():
                g.create_dataset(name, data=a, chunks=(1, *a.shape[1:]) if name == "u" else None)
            f.attrs.update({"format": "pretraining-pdes", "harness_version": harness.__version__})

    return write_atomic(path, write)
