"""Data sources in a sweep: the ``data`` key of ``pretrain`` and ``downstream``, from expand to the job.

    downstream: {data: {path: poisson_ood.h5, format: tl-scaling}, n_train: 512}

A part (``pretrain`` or ``downstream``) with ``data`` draws its samples from the files instead of generating
them; its ``system`` and ``shift`` then name the data, so that results and the report's panels tell
datasets apart: ``system`` the file's system where the format says it (tl-scaling; pretraining-pdes groups of
Navier-Stokes' visc and amp: navier_stokes), else the format, ``shift`` the (training) file's name without its
suffix. At expand, :func:`resolve_part` checks the spec against the files' headers (layout, a format of the
data the task learns from -- steady samples, or trajectories for the time-dependent tasks -- and the grid
against ``resolution``; trajectories also: ``nt`` frames evenly spaced over ``horizon``, and their reader, one
family's coefficients) and returns it resolved (absolute paths, the files' fingerprint): a job's config holds
the resolved spec, so its id changes when a file does;
:func:`check_needs` checks that each split holds the samples a stage asks for. At run time a job's data step
reads its splits with :func:`harness.data.source.load`, which refuses a file whose fingerprint no longer matches.
:func:`model_channels` gives the model's input and output channels for a steady part (a time task's model
takes ``time_window`` frames and the data's coefficient channels, generated or not).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from harness.data import has_data
from harness.data.source import SourceInfo, check_source
from harness.errors import DataFileError
from harness.job import Downstream, Pretrain
from harness.pde import COMMON_CHANNELS, SPLITS

TIME_TOLERANCE = 1e-5  # relative, of the frames' span: float32 times of evenly spaced frames agree to ~1e-7

# A generated part's model: the source plus the common coefficient channels in, the solution out.
GENERATED_CHANNELS = (1 + len(COMMON_CHANNELS), 1)


def resolve_part(name: str, part: Mapping[str, Any], resolution: int, *, frames: tuple[int, float] | None = None,
                 base: str | None = None, cache_dir: str | None = None) -> dict[str, Any]:
    """The part with its ``data`` spec checked against the files' headers and resolved (absolute paths,
    fingerprint), ``system`` and ``shift`` naming the data; a part without ``data`` loses a ``data: null``.
    ``frames``: ``(nt, horizon)`` of a time-dependent task (the file then holds trajectories), None for a steady
    one. ``base``: the folder relative paths are taken from (the sweep file's). Raises DataFileError naming
    ``name``.data, the file, the key and the fix."""
    if part.get("data") is None:
        return {k: v for k, v in part.items() if k != "data"}
    where = f"{name}.data"
    kind = "steady" if frames is None else "trajectory"
    info = check_source(part["data"], {}, kind=kind, where=where, base=base, cache_dir=cache_dir)
    grid, files = info.layout.grid, ", ".join(dict.fromkeys(info.paths.values()))
    if grid[0] != grid[1]:  # only trajectory formats take oblong grids (the steady ones refuse them on reading)
        raise DataFileError(f"{where}: {files} holds {grid[0]}x{grid[1]} grids: the tasks need square n x n grids "
                            "(resample the data)")
    if grid != (resolution, resolution):
        raise DataFileError(f"{where}: {files} holds {grid[0]}x{grid[1]} grids but resolution is {resolution}: "
                            f"set resolution: {grid[0]} (the model and the memory check use it)")
    if frames is not None:
        _check_trajectories(f"{where}: {files}", info, *frames)
    label = Path(info.paths.get("train") or next(iter(info.paths.values()))).stem
    return {**part, "system": info.layout.system or info.format, "shift": label, "data": info.spec}


def _check_trajectories(where: str, info: SourceInfo, nt: int, horizon: float) -> None:
    """The files' trajectories fit a time task: ``nt`` frames evenly spaced over ``horizon`` (the task's frame
    times, ``harness.tasks.trajectories.frame_times``)."""
    layout = info.layout
    if layout.timesteps != nt:
        raise DataFileError(f"{where} holds trajectories of {layout.timesteps} frames but nt is {nt}: set nt: "
                            f"{layout.timesteps} (time_window, target and unroll count in the file's frames)")
    times = np.asarray(layout.times, np.float64)
    span = float(times[-1] - times[0])
    steps = np.diff(times)
    if span <= 0 or np.abs(steps - span / (nt - 1)).max() > TIME_TOLERANCE * span:
        raise DataFileError(f"{where}: its frames are not evenly spaced in t (steps from {steps.min():g} to "
                            f"{steps.max():g}): the time tasks take evenly spaced frames (resample the data)")
    if abs(span - horizon) > TIME_TOLERANCE * span:
        raise DataFileError(f"{where} holds frames over {span:g} time units (t from {times[0]:g} to {times[-1]:g}) "
                            f"but horizon is {horizon:g}: set horizon: {span:g}")


def source_info(name: str, part: Pretrain | Downstream, needs: Mapping[str, int] | None = None, *,
                cache_dir: str | None = None) -> SourceInfo:
    """The :class:`SourceInfo` of a part's (resolved: its kind checked) ``data`` spec, ``needs`` (``{split: n}``)
    checked; ``cache_dir``: where the files' fingerprints are cached (``harness.data.fingerprint``)."""
    return check_source(part.data, needs or {}, where=f"{name}.data", cache_dir=cache_dir)


def needs_of(part: Pretrain | Downstream) -> dict[str, int]:
    """The samples a stage's part asks of each split (``n_train`` etc.; 0 where its config has none)."""
    return {split: getattr(part, f"n_{split}") or 0 for split in SPLITS}


def check_needs(name: str, part: Pretrain | Downstream, *, cache_dir: str | None = None) -> None:
    """Raise DataFileError unless each split of the part's files holds the samples the part asks for."""
    source_info(name, part, needs_of(part), cache_dir=cache_dir)


def model_channels(name: str, part: Pretrain | Downstream, *, cache_dir: str | None = None) -> tuple[int, int]:
    """(input, output) channels of a steady model on the part's data: the file's, or ``GENERATED_CHANNELS``."""
    if not has_data(part):
        return GENERATED_CHANNELS
    info = source_info(name, part, cache_dir=cache_dir)
    return info.in_channels, info.out_channels
