"""Data files as trees of named arrays read row by row: HDF5 through h5py, ``.npz`` through memory maps.

Nothing is read when a file is opened: an HDF5 dataset or an uncompressed ``.npz`` member is read only at
the rows asked for (:func:`gather`, in blocks of sorted rows), so taking 512 samples from a 17 GB file reads
about 512 samples' bytes. A compressed ``.npz`` member (``np.savez_compressed``) cannot be read by rows and
is decompressed whole on first use: save large arrays with ``np.savez`` or in HDF5.

A file is held to what it stores (``Node.require``, at expand and at every read): a dataset must hold real
numbers (integers or floating point), have its storage written (an HDF5 dataset that declares rows it never
wrote would read as zeros; a compressed member must hold the bytes its header declares) and live in the file
itself (external links, virtual datasets and external storage point at other files, which the fingerprint does
not cover).
"""

from __future__ import annotations

import contextlib
import json
import math
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
MAX_GROUP_DEPTH = 8  # groups below this depth are not read (the layouts use the root and one level)
REAL_KINDS = "biuf"  # numpy dtype kinds a model takes: bool, signed and unsigned integers, floating point
OTHER_FILES = "copy the data into the file (data in other files is not covered by its fingerprint)"


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

    def __init__(self, path: str, info: zipfile.ZipInfo) -> None:
        self.path, self.name, self._data = path, info.filename, None
        with zipfile.ZipFile(path) as zf, zf.open(self.name) as fh:
            self.shape, _, self.dtype = _npy_header(fh, f"{path}: member {self.name}")
            declared = fh.tell() + math.prod(self.shape) * self.dtype.itemsize
        self.ndim = len(self.shape)
        self.problem = "" if info.file_size >= declared else (
            f"declares {self.shape} {self.dtype.name} ({declared / 1e9:.3g} GB) but its compressed member holds "
            f"{info.file_size / 1e6:.3g} MB: save the array again whole")

    def __getitem__(self, index: Any) -> np.ndarray:
        if self._data is None:
            with zipfile.ZipFile(self.path) as zf, zf.open(self.name) as fh:
                self._data = np.lib.format.read_array(fh, allow_pickle=False)
        return self._data[index]


def _npz_member(path: str, info: zipfile.ZipInfo) -> np.ndarray | _Deflated:
    """A member as a read-only memory map (stored members) or a lazily decompressed array."""
    if info.compress_type != zipfile.ZIP_STORED:
        return _Deflated(path, info)
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

    def __init__(self, label: str, arrays: dict[str, Any], groups: dict[str, Node], attrs: dict[str, Any],
                 links: dict[str, str] | None = None):
        self.label, self.arrays, self.groups, self.attrs = label, arrays, groups, attrs
        self.links = links or {}  # name -> the file and path an external link points at

    def require(self, name: str, hint: str) -> Any:
        """The array ``name``, held to what it stores (module docstring); DataFileError naming the dataset and
        the fix, or listing what the group holds and ``hint``."""
        if name in self.links:
            raise DataFileError(f"{self.label}: dataset {name!r} is an external link to {self.links[name]}: "
                                f"{OTHER_FILES}")
        if name not in self.arrays:
            held = ", ".join(sorted(self.arrays)) or "no arrays"
            raise DataFileError(f"{self.label} has no dataset {name!r} (it holds: {held}): {hint}")
        array = self.arrays[name]
        if problem := stored_problem(array):
            raise DataFileError(f"{self.label}: dataset {name!r} {problem}")
        return array


def stored_problem(array: Any) -> str:
    """What keeps ``array`` from being read as the data it declares ("" when nothing does)."""
    dtype = np.dtype(array.dtype)
    if dtype.kind not in REAL_KINDS:
        return (f"holds {dtype.name} values: the harness takes real numbers (integers or floating point): store "
                "the data as float32")
    if isinstance(array, _Deflated):
        return array.problem
    if not isinstance(array, h5py.Dataset):
        return ""
    if array.is_virtual:
        return f"is a virtual dataset (its data lives in other files): {OTHER_FILES}"
    if array.external:
        return f"is an external storage dataset (its data lives in {array.external[0][0]}): {OTHER_FILES}"
    rows, layout = (array.shape or (1,))[0], array.id.get_create_plist().get_layout()
    if layout == h5py.h5d.CHUNKED:
        chunks = math.prod(-(-size // chunk) for size, chunk in zip(array.shape, array.chunks, strict=True))
        if (written := array.id.get_num_chunks()) < chunks:
            return (f"declares {rows} rows but only {written} of its {chunks} chunks are written: write the data "
                    "(or give the file that holds it)")
    elif layout == h5py.h5d.CONTIGUOUS and array.size and array.id.get_storage_size() < array.nbytes:
        return (f"declares {rows} rows but none of its storage is written: write the data (or give the file that "
                "holds it)")
    return ""


def _h5_node(group: h5py.Group, path: str, depth: int = 0) -> Node:
    """A group as a :class:`Node`: its datasets, its subgroups (to ``MAX_GROUP_DEPTH``: a link back up cannot
    loop), and its external links unresolved."""
    label = path if group.name == "/" else f"{path}[{group.name.lstrip('/')}]"
    arrays, groups, links = {}, {}, {}
    for name in group:
        link = group.get(name, getlink=True)
        if isinstance(link, h5py.ExternalLink):
            links[name] = f"{link.filename}:{link.path}"
            continue
        item = group.get(name)  # None for a soft link to nothing
        if isinstance(item, h5py.Dataset):
            arrays[name] = item
        elif isinstance(item, h5py.Group) and depth < MAX_GROUP_DEPTH:
            groups[name] = _h5_node(item, path, depth + 1)
    return Node(label, arrays, groups, dict(group.attrs), links)


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
            attrs = _json_attrs(path, members.pop("attrs"))
        yield Node(path, members, {}, attrs)
    else:
        raise DataFileError(f"{path} is neither HDF5 nor .npz (it starts with {head!r}): give a data "
                            "file in one of the documented layouts")


def _json_attrs(path: str, member: Any) -> dict[str, Any]:
    """The attributes a ``.npz`` holds in its ``attrs`` member: a JSON mapping."""
    text = str(member[()])
    try:
        attrs = json.loads(text)
    except ValueError:
        attrs = None
    if not isinstance(attrs, dict):
        raise DataFileError(f"{path}: member attrs is not a JSON mapping ({text[:60]!r}): save it as "
                            "np.array(json.dumps({name: value, ...}))")
    return attrs


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


def first_row(a: np.ndarray, bad: Callable[[np.ndarray], np.ndarray]) -> int | None:
    """Index along the first axis of the first sample where ``bad(block)`` (one bool per sample of a block) holds,
    or None (checked in blocks of about ``BLOCK_BYTES``)."""
    step = max(1, BLOCK_BYTES // max(1, a[:1].nbytes))
    for s in range(0, len(a), step):
        rows = bad(a[s:s + step])
        if rows.any():
            return s + int(np.argmax(rows))
    return None


def nonfinite(block: np.ndarray) -> np.ndarray:
    """Per sample of ``block``: whether it holds a NaN or inf."""
    return ~np.isfinite(block.reshape(len(block), -1)).all(axis=1)
