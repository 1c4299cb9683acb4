"""Data files as trees of named arrays read row by row: HDF5 through h5py, ``.npz`` through memory maps.

Nothing is read when a file is opened: an HDF5 dataset or an uncompressed ``.npz`` member is read only at
the rows asked for (:func:`gather`, in blocks of sorted rows), so taking 512 samples from a 17 GB file reads
about 512 samples' bytes. A compressed ``.npz`` member (``np.savez_compressed``) cannot be read by rows and
is decompressed whole on first use: save large arrays with ``np.savez`` or in HDF5.
"""

from __future__ import annotations

import contextlib
import json
import os
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

import h5py
import numpy as np

from harness.errors import DataFileError

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
ZIP_MAGIC = b"PK\x03\x04"
BLOCK_BYTES = 8 << 20  # rows read per call: about this many bytes (the only buffer beyond the output)


def _npy_header(fh: Any, label: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran order, dtype) from a ``.npy`` header, leaving ``fh`` at the data."""
    version = np.lib.format.read_magic(fh)
    read = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}.get(version)
    if read is None:
        raise DataFileError(f"{label} is a .npy of version {version}: save it with numpy's default format")
    shape, fortran, dtype = read(fh)
    if dtype.hasobject:
        raise DataFileError(f"{label} holds Python objects: save plain numeric arrays")
    return shape, fortran, dtype


class _Deflated:
    """A compressed ``.npz`` member: shape and dtype from its header, data decompressed whole on first use."""

    def __init__(self, path: str, name: str) -> None:
        self.path, self.name, self._data = path, name, None
        with zipfile.ZipFile(path) as zf, zf.open(name) as fh:
            self.shape, _, self.dtype = _npy_header(fh, f"{path}: member {name}")
        self.ndim = len(self.shape)

    def __getitem__(self, index: Any) -> np.ndarray:
        if self._data is None:
            with zipfile.ZipFile(self.path) as zf, zf.open(self.name) as fh:
                self._data = np.lib.format.read_array(fh, allow_pickle=False)
        return self._data[index]


def _npz_member(path: str, info: zipfile.ZipInfo) -> np.ndarray | _Deflated:
    """A member as a read-only memory map (stored members) or a lazily decompressed array."""
    if info.compress_type != zipfile.ZIP_STORED:
        return _Deflated(path, info.filename)
    with open(path, "rb") as fh:
        fh.seek(info.header_offset)
        local = fh.read(30)  # the local file header: its name and extra-field lengths end it
        fh.seek(info.header_offset + 30 + int.from_bytes(local[26:28], "little")
                + int.from_bytes(local[28:30], "little"))
        shape, fortran, dtype = _npy_header(fh, f"{path}: member {info.filename}")
        if shape == () or 0 in shape:  # nothing worth mapping
            return np.fromfile(fh, dtype, count=int(np.prod(shape))).reshape(shape)
        offset = fh.tell()
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")


class Node:
    """A group of a data file: named arrays (``arrays``), named subgroups (``groups``) and attributes.

    ``label`` names it in messages: the file path, then the group path in brackets (``file.h5[train]``).
    """

    def __init__(self, label: str, arrays: dict[str, Any], groups: dict[str, Node], attrs: dict[str, Any]):
        self.label, self.arrays, self.groups, self.attrs = label, arrays, groups, attrs

    def require(self, name: str, hint: str) -> Any:
        """The array ``name``, or DataFileError listing what the group holds and ``hint``."""
        if name not in self.arrays:
            held = ", ".join(sorted(self.arrays)) or "no arrays"
            raise DataFileError(f"{self.label} has no dataset {name!r} (it holds: {held}): {hint}")
        return self.arrays[name]


def _h5_node(group: h5py.Group, path: str) -> Node:
    label = path if group.name == "/" else f"{path}[{group.name.lstrip('/')}]"
    arrays = {k: v for k, v in group.items() if isinstance(v, h5py.Dataset)}
    groups = {k: _h5_node(v, path) for k, v in group.items() if isinstance(v, h5py.Group)}
    return Node(label, arrays, groups, dict(group.attrs))


@contextlib.contextmanager
def open_file(path: str) -> Iterator[Node]:
    """Open an HDF5 or ``.npz`` file read-only as its root :class:`Node`; DataFileError if it is missing or
    neither format."""
    if not os.path.exists(path):
        raise DataFileError(f"{path} does not exist: check the path")
    if not os.path.isfile(path):
        raise DataFileError(f"{path} is not a file: name the data file itself")
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head == HDF5_MAGIC or h5py.is_hdf5(path):
        try:
            f = h5py.File(path, "r")
        except OSError as err:
            raise DataFileError(f"{path} cannot be opened as HDF5 ({err}): is it complete?") from err
        with f:
            yield _h5_node(f, path)
    elif head.startswith(ZIP_MAGIC):
        try:
            with zipfile.ZipFile(path) as zf:
                members = {i.filename[:-4]: _npz_member(path, i) for i in zf.infolist()
                           if i.filename.endswith(".npy")}
        except (zipfile.BadZipFile, ValueError, OSError) as err:
            raise DataFileError(f"{path} cannot be read as .npz ({err}): is it complete?") from err
        attrs = {}
        if "attrs" in members and members["attrs"].ndim == 0:  # the arrays writer's JSON attributes
            attrs = json.loads(str(members.pop("attrs")[()]))
        yield Node(path, members, {}, attrs)
    else:
        raise DataFileError(f"{path} is neither HDF5 nor .npz (it starts with {head!r}): give a data "
                            "file in one of the documented layouts")


def gather(array: Any, rows: np.ndarray, positions: np.ndarray, put: Callable[[np.ndarray, np.ndarray], None]
           ) -> None:
    """Read ``array`` at the sorted, distinct ``rows`` (first axis) block by block, calling
    ``put(block, positions[block rows])``. A dense block is read as one slice, a sparse one by index."""
    per_row = max(1, int(np.prod(array.shape[1:], dtype=np.int64)) * np.dtype(array.dtype).itemsize)
    step = max(1, min(4096, BLOCK_BYTES // per_row))
    for s in range(0, len(rows), step):
        block = rows[s:s + step]
        lo, hi = int(block[0]), int(block[-1]) + 1
        dense = hi - lo <= 2 * len(block)  # then one contiguous read and a pick
        put(np.asarray(array[lo:hi])[block - lo] if dense else np.asarray(array[block]), positions[s:s + step])


def first_nonfinite(a: np.ndarray) -> int | None:
    """Index along the first axis of the first sample with a NaN or inf, or None (checked in blocks)."""
    step = max(1, BLOCK_BYTES // max(1, a[:1].nbytes))
    for s in range(0, len(a), step):
        block = a[s:s + step]
        bad = ~np.isfinite(block.reshape(len(block), -1)).all(axis=1)
        if bad.any():
            return s + int(np.argmax(bad))
    return None
