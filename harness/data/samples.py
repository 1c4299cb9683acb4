"""What a data source returns: :class:`Samples` (steady operator learning) and :class:`Trajectories`.

Steady samples, in the harness's axis order (``a[..., i, j]`` at ``x = i / R``, ``y = j / R``):
``fields`` (n, F, R, R), the spatial inputs (F = 1, the source f, for the three systems; the coefficient
field for Darcy); ``coefficients`` (n, K), constant per-sample coefficients broadcast as input channels
(``channels`` names them; ``COMMON_CHANNELS`` for the harness's systems, K = 0 where there are none);
``targets`` (n, T, R, R). The model takes ``in_channels = F + K`` and gives ``out_channels = T``.

Normalisation statistics come from the training split (:func:`compute_stats`), by the source's
``normalise`` rule:

- ``instance`` (Subramanian et al.; the generated systems, tl-scaling files): F = 1 is a forcing the solution
  is linear in; each sample's input is divided by its ``||f|| / median_source_norm`` and the coefficient
  channels by ``coef_scale`` (``harness.train.normalise.make_inputs``). Stats: ``median_source_norm``,
  ``coef_scale`` -- the same helpers as ``harness.pde.compute_stats``, so a file of generated data gets
  the statistics the generated data gets.
- ``channel`` (Darcy, and ``arrays`` files by default): no per-sample rescaling, which would make inputs
  that differ by a factor (and whose solutions differ) alike; field channel c is divided by
  ``field_scale[c]`` (median over samples of its RMS) and coefficient column k by ``coef_scale[k]`` (median
  |value|), a channel whose scale is 0 staying 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from harness.pde import COMMON_CHANNELS
from harness.pde.steady_dataset import PDEData, coefficient_scales, median_rms, present_channels


@dataclass
class Samples:
    """n steady samples of one split (see the module docstring for the layout).

    ``system``: (n,) index in ``SYSTEMS`` per sample where the samples belong to a harness system (their
    coefficients then use ``COMMON_CHANNELS``), else None; ``indices``: the file row of each sample;
    ``extras``: per-sample arrays a format also holds (tl-scaling's ``other``); ``stats``: training split
    only; ``meta``: where the samples came from (path, split, fingerprint).
    """

    fields: np.ndarray
    coefficients: np.ndarray
    targets: np.ndarray
    channels: tuple[str, ...]
    normalise: str
    system: np.ndarray | None = None
    indices: np.ndarray | None = None
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    stats: dict | None = None
    meta: dict = field(default_factory=dict)

    @property
    def in_channels(self) -> int:
        """Input channels of a model on these samples: field channels + coefficient channels."""
        return self.fields.shape[1] + self.coefficients.shape[1]

    @property
    def out_channels(self) -> int:
        """Output channels of a model on these samples."""
        return self.targets.shape[1]

    def __len__(self) -> int:
        return len(self.fields)


@dataclass
class Trajectories:
    """n time-dependent trajectories of one split: ``u`` (n, nt, X, Y) float32 in the harness's axis order,
    ``coefficients`` (n, K) in ``channels`` order, ``t`` (nt,), ``grid`` (2, X, Y) the (x, y) coordinates of
    each grid point, ``indices`` the file rows, ``meta`` where they came from."""

    u: np.ndarray
    coefficients: np.ndarray
    channels: tuple[str, ...]
    t: np.ndarray
    grid: np.ndarray
    indices: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.u)


def _present(samples: Samples) -> np.ndarray:
    """Which coefficient columns each sample has: its system's channels, or all of them."""
    if samples.system is not None and samples.channels == COMMON_CHANNELS:
        return present_channels(samples.system)
    return np.ones(samples.coefficients.shape, dtype=bool)


def compute_stats(samples: Samples) -> dict:
    """Normalisation statistics of a training split by its ``normalise`` rule (module docstring)."""
    coef_scale = coefficient_scales(samples.coefficients, _present(samples))
    if samples.normalise == "instance":
        return {"median_source_norm": median_rms(samples.fields[:, 0]), "coef_scale": coef_scale}
    return {"field_scale": [median_rms(samples.fields[:, c]) for c in range(samples.fields.shape[1])],
            "coef_scale": coef_scale}


def samples_of(data: PDEData) -> Samples:
    """Generated data as :class:`Samples` (common coefficient layout, instance normalisation), stats kept."""
    return Samples(data.source[:, None], data.coef_common, data.solution[:, None], COMMON_CHANNELS, "instance",
                   system=np.asarray(data.params["system"]), stats=data.stats, meta=dict(data.meta))
