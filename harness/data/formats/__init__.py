"""The documented file layouts, one reader each (the module docstrings spell out each layout), and writers."""

import os
from pathlib import Path

from harness.data.formats.arrays import Arrays, write_arrays
from harness.data.formats.base import Layout, Reader
from harness.data.formats.pdebench_darcy import PDEBenchDarcy
from harness.data.formats.pretraining_pdes import PretrainingPDEs, write_pretraining_pdes
from harness.data.formats.tl_scaling import TENSOR_LAYOUT, TLScaling, write_tl_scaling
from harness.data.samples import Samples
from harness.errors import DataFileError

READERS: dict[str, Reader] = {r.name: r for r in (TLScaling(), PretrainingPDEs(), PDEBenchDarcy(), Arrays())}


def write_samples(path: str | os.PathLike, samples: Samples, fmt: str = "arrays") -> Path:
    """Write steady samples as a data file of format ``fmt`` (``arrays`` or ``tl-scaling``); returns its path."""
    if fmt == "tl-scaling":
        return write_tl_scaling(path, samples)
    if fmt != "arrays":
        raise DataFileError(f"{path}: samples are written as arrays or tl-scaling, not {fmt}")
    return write_arrays(path, samples.fields, samples.targets, samples.coefficients, channels=samples.channels,
                        normalise=samples.normalise)

__all__ = ["READERS", "TENSOR_LAYOUT", "Layout", "Reader", "write_arrays", "write_pretraining_pdes", "write_samples",
           "write_tl_scaling"]
