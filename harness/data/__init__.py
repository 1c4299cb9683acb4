"""Data sources beside the generated systems: files on disk in documented layouts.

A data source is a spec, plain data in a job's config (:mod:`harness.data.spec`), e.g.
``{path: /data/poisson_ood.h5, format: tl-scaling}``. At expand, :func:`check_source` checks it against the
file's headers and returns a :class:`SourceInfo` (the resolved spec with the file's fingerprint, channel
counts, rows per split); a job's data step calls :func:`load` for each split, getting :class:`Samples`
(steady formats) or :class:`Trajectories`. Layouts: ``harness.data.formats`` (one module per format);
subsets: :mod:`harness.data.subsets`; identity: :mod:`harness.data.fingerprint`.

Public API: :func:`check_source`, :func:`load`, :class:`SourceInfo`, :class:`Samples`,
:class:`Trajectories`, :func:`compute_stats`, :func:`samples_of`, :func:`write_arrays`, :func:`write_tl_scaling`,
:func:`write_pretraining_pdes`, :func:`write_samples`, :func:`fingerprint`, :func:`parse_spec`, ``FORMATS``,
``TENSOR_LAYOUT``.
"""

from harness.data.fingerprint import fingerprint
from harness.data.formats import TENSOR_LAYOUT, write_arrays, write_pretraining_pdes, write_samples, write_tl_scaling
from harness.data.samples import Samples, Trajectories, compute_stats, samples_of
from harness.data.source import SourceInfo, check_source, load
from harness.data.spec import FORMATS, parse_spec

__all__ = [
    "FORMATS",
    "TENSOR_LAYOUT",
    "Samples",
    "SourceInfo",
    "Trajectories",
    "check_source",
    "compute_stats",
    "fingerprint",
    "load",
    "parse_spec",
    "samples_of",
    "write_arrays",
    "write_pretraining_pdes",
    "write_samples",
    "write_tl_scaling",
]
