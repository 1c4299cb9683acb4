"""Training sets larger than a memory budget: batches read from the cache file as the training loop asks for them.

A steady dataset's cache file is an uncompressed ``.npz`` (``harness.pde.cache``), so each array is a plain
``.npy`` block at a fixed offset in it. ``StreamedSplit`` locates those blocks and reads just the rows of a batch
with positioned reads (``os.pread``), normalises them (``harness.train.normalise``, the same per-sample
arithmetic as the resident path, so the batches are bit for bit the same) and hands them to the device, through
pinned memory on a GPU. Positioned reads rather than a memory map: the pages of a map that the loop has touched
count as the process's memory until the kernel drops them, reads do not (the page cache is the kernel's).

``StreamedRows`` is what ``harness.train.loop.train`` indexes instead of a tensor: it has a ``shape``, ``to``
(binds a device) and ``rows[idx]`` (a batch on that device). ``over_budget`` applies the sweep's ``stream``
settings (``harness.job.StreamConfig``): a training set streams always, or (auto) when its resident tensors
(inputs and targets, float32) exceed the budget, ``stream.budget_gb`` or else half of the device's memory (the
GPU's, else this machine's RAM). ``harness.tasks.steady_task`` calls it for a generated training split; validation and
test sets stay resident (the expand-time memory check counts them).
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness.errors import DataError
from harness.job import StreamConfig
from harness.train.normalise import make_inputs, make_targets

FLOAT_BYTES = 4


@dataclass(frozen=True)
class Block:
    """One array of an uncompressed ``.npz``: where its data starts in the file, its dtype and shape."""

    path: Path
    offset: int
    dtype: np.dtype
    shape: tuple[int, ...]

    @property
    def row_bytes(self) -> int:
        """Bytes of one row (one sample)."""
        return int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize

    def rows(self, fd: int, idx: np.ndarray) -> np.ndarray:
        """The rows ``idx`` (in that order), read from the open file ``fd``."""
        out = np.empty((len(idx), *self.shape[1:]), dtype=self.dtype)
        flat = out.reshape(len(idx), -1).view(np.uint8)
        for k, i in enumerate(idx.tolist()):
            flat[k] = np.frombuffer(os.pread(fd, self.row_bytes, self.offset + i * self.row_bytes), dtype=np.uint8)
        return out


def locate(path: Path, name: str) -> Block:
    """The ``.npy`` block of array ``name`` in the uncompressed ``.npz`` at ``path``."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(f"{name}.npy")
    if info.compress_type != zipfile.ZIP_STORED:
        raise DataError(f"{path}: array {name} is compressed; only uncompressed dataset files stream")
    with open(path, "rb") as fh:
        fh.seek(info.header_offset)
        local = fh.read(30)  # the zip local file header: name and extra-field lengths at bytes 26-29
        fh.seek(info.header_offset + 30 + int.from_bytes(local[26:28], "little")
                + int.from_bytes(local[28:30], "little"))
        read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        shape, fortran, dtype = read_header[np.lib.format.read_magic(fh)](fh)
        if fortran:
            raise DataError(f"{path}: array {name} is stored in Fortran order; regenerate the file")
        return Block(path, fh.tell(), np.dtype(dtype), tuple(shape))


@dataclass(frozen=True)
class StreamedRows:
    """The inputs (``stats`` given) or targets of a streamed training set, indexed by batch like a tensor."""

    split: StreamedSplit
    stats: dict[str, Any] | None  # None: the targets
    device: torch.device = torch.device("cpu")

    @property
    def shape(self) -> tuple[int, ...]:
        """(n, channels, R, R), as the resident tensor would have."""
        n, r1, r2 = self.split.source.shape
        channels = 1 + self.split.coef.shape[1] if self.stats is not None else 1
        return n, channels, r1, r2

    def to(self, device: torch.device | str) -> StreamedRows:
        """The same rows, delivered on ``device``."""
        return replace(self, device=torch.device(device))

    def __getitem__(self, idx: torch.Tensor) -> torch.Tensor:
        rows = idx.cpu().numpy()
        fd = os.open(self.split.path, os.O_RDONLY)
        try:
            if self.stats is None:
                batch = make_targets(self.split.solution.rows(fd, rows))
            else:
                batch = make_inputs(self.split.source.rows(fd, rows), self.split.coef.rows(fd, rows), self.stats)
        finally:
            os.close(fd)
        if self.device.type == "cuda":
            return batch.pin_memory().to(self.device, non_blocking=True)
        return batch.to(self.device)


@dataclass(frozen=True)
class StreamedSplit:
    """A steady training split in its cache file, read batch by batch: sources, coefficients, solutions."""

    path: Path
    source: Block
    coef: Block
    solution: Block
    stats: dict[str, Any]
    normalise = "instance"  # as ``harness.data.Samples`` of generated data, for ``harness.data.tensors.pick_stats``

    @property
    def coefficients(self) -> Block:
        """The coefficient array's block (its ``shape`` is what ``pick_stats`` compares with a model's statistics)."""
        return self.coef

    @classmethod
    def open(cls, path: Path | str) -> StreamedSplit:
        """Locate the arrays of the dataset file at ``path`` and read its training statistics."""
        path = Path(path)
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(str(npz["meta"]))
        if not meta.get("stats"):
            raise DataError(f"{path} has no training statistics: only a training split streams")
        return cls(path, locate(path, "source"), locate(path, "coef_common"), locate(path, "solution"),
                   meta["stats"])

    @property
    def resident_bytes(self) -> int:
        """Bytes of the resident float32 tensors this split would be: inputs (1 + C channels) and targets."""
        n, r1, r2 = self.source.shape
        return n * (2 + self.coef.shape[1]) * r1 * r2 * FLOAT_BYTES

    def tensors(self, stats: dict[str, Any]) -> tuple[StreamedRows, StreamedRows]:
        """(inputs normalised with ``stats``, targets), for ``train``."""
        return StreamedRows(self, stats), StreamedRows(self, None)


def device_bytes(device: torch.device) -> int:
    """The memory of ``device``: the GPU's, else this machine's RAM."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def over_budget(path: Path | str, settings: StreamConfig, device: torch.device) -> StreamedSplit | None:
    """The training split at ``path`` opened for streaming when ``settings`` say it streams on ``device``
    (``StreamConfig.streams``: always, or its resident tensors exceed the budget), else None (the resident path)."""
    split = StreamedSplit.open(path)
    return split if settings.streams(split.resident_bytes, device_bytes(device)) else None
