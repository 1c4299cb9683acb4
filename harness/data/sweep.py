"""Data sources in a sweep: the ``data`` key of ``pretrain`` and ``downstream``, from expand to the job.

    downstream: {data: {path: poisson_ood.h5, format: tl-scaling}, n_train: 512}

A part (``pretrain`` or ``downstream``) with ``data`` draws its samples from the files instead of generating
them; its ``system`` and ``shift`` then name the data, so that results and the report's panels tell
datasets apart: ``system`` the file's system where the format says it (tl-scaling), else the format,
``shift`` the (training) file's name without its suffix. At expand, :func:`resolve_part` checks the spec against
the files' headers (layout, a steady format, the grid against ``resolution``) and returns it resolved
(absolute paths, the files' fingerprint): a job's config holds the resolved spec, so its id changes when a
file does; :func:`check_needs` checks that each split holds the samples a stage asks for. At run time a
job's data step reads its splits with :func:`harness.data.load`, which refuses a file whose fingerprint no
longer matches. :func:`model_channels` gives the model's input and output channels for a part.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.data.source import SourceInfo, check_source
from harness.errors import DataFileError
from harness.pde.cache import SPLITS
from harness.pde.systems import COMMON_CHANNELS

PARTS = ("pretrain", "downstream")
# A generated part's model: the source plus the common coefficient channels in, the solution out.
GENERATED_CHANNELS = (1 + len(COMMON_CHANNELS), 1)


def has_data(part: Mapping[str, Any]) -> bool:
    """Whether a part's samples come from files (its ``data`` spec is set)."""
    return part.get("data") is not None


def resolve_part(name: str, part: Mapping[str, Any], resolution: int, *, base: str | None = None,
                 cache_dir: str | None = None) -> dict[str, Any]:
    """The part with its ``data`` spec checked against the files' headers and resolved (absolute paths,
    fingerprint), ``system`` and ``shift`` naming the data; a part without ``data`` loses a ``data: null``.
    ``base``: the folder relative paths are taken from (the sweep file's). Raises DataFileError naming
    ``name``.data, the file, the key and the fix."""
    if not has_data(part):
        return {k: v for k, v in part.items() if k != "data"}
    info = check_source(part["data"], {}, kind="steady", where=f"{name}.data", base=base, cache_dir=cache_dir)
    grid = info.layout.grid
    if grid != (resolution, resolution):
        files = ", ".join(dict.fromkeys(info.paths.values()))
        raise DataFileError(f"{name}.data: {files} holds {grid[0]}x{grid[1]} grids but resolution is {resolution}: "
                            f"set resolution: {grid[0]} (the model and the memory check use it)")
    label = Path(info.paths.get("train") or next(iter(info.paths.values()))).stem
    return {**part, "system": info.layout.system or info.format, "shift": label, "data": info.spec}


def source_info(name: str, part: Mapping[str, Any], needs: Mapping[str, int] | None = None) -> SourceInfo:
    """The :class:`SourceInfo` of a part's (resolved) ``data`` spec, ``needs`` (``{split: n}``) checked."""
    return check_source(part["data"], needs or {}, kind="steady", where=f"{name}.data")


def needs_of(part: Mapping[str, Any]) -> dict[str, int]:
    """The samples a stage's part asks of each split (``n_train`` etc.; 0 where its config has none)."""
    return {split: int(part.get(f"n_{split}", 0)) for split in SPLITS}


def check_needs(name: str, part: Mapping[str, Any]) -> None:
    """Raise DataFileError unless each split of the part's files holds the samples the part asks for."""
    source_info(name, part, needs_of(part))


def model_channels(name: str, part: Mapping[str, Any]) -> tuple[int, int]:
    """(input, output) channels of a model on the part's data: the file's, or ``GENERATED_CHANNELS``."""
    if not has_data(part):
        return GENERATED_CHANNELS
    info = source_info(name, part)
    return info.in_channels, info.out_channels
