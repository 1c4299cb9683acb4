"""The documented file layouts, one reader each (the module docstrings spell out each layout)."""

from harness.data.formats.arrays import Arrays, write_arrays
from harness.data.formats.base import Layout, Reader
from harness.data.formats.pdebench_darcy import PDEBenchDarcy
from harness.data.formats.pretraining_pdes import PretrainingPDEs
from harness.data.formats.tl_scaling import TENSOR_LAYOUT, TLScaling

READERS: dict[str, Reader] = {r.name: r for r in (TLScaling(), PretrainingPDEs(), PDEBenchDarcy(), Arrays())}

__all__ = ["READERS", "TENSOR_LAYOUT", "Layout", "Reader", "write_arrays"]
