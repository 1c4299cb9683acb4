"""Evaluation sources: where a trained job is scored beyond its own test split (`harness eval`, a sweep's `eval:`).

    eval:                                  # a sweep: every trained downstream job is scored on each, after training
      - {system: helmholtz, shift: moderate}   # another generated system or shift (the sweep's syntax)
      - {resolution: 32}                        # its own system at another grid (zero-shot super-resolution)
      - {data: {path: ood.h5, format: arrays}}  # a data file (the sweep's `data` spec)

    harness eval JOB_ID --data helmholtz:moderate --resolution 32    # the same from the command line

An entry may combine them; what it leaves out is the job's own (its system, its shift for its own system, else
``id``; its grid, at which a data file must then be). :func:`check_eval` checks an entry against one job: the grid
is one the model's family runs on (a DeepONet's sensors are fixed; a U-Net's pooling and an OFormer's patches need
divisibility; an FNO's modes must fit), the system is of the job's task (steady or time-dependent) with a valid
shift, and the data give the model its channels. Torch-free: expand runs it for every job of a sweep with `eval:`,
so a source that cannot be scored is refused before anything runs. The block is on the jobs, not in their ids.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.data import parse_spec
from harness.data.parts import model_channels, resolve_part, source_info
from harness.errors import HarnessError
from harness.job import Job
from harness.models import arch_of, family, sizes_of
from harness.pde import (
    ALL_TIME_SYSTEMS,
    MIXED,
    SYSTEMS,
    TIME_MIXED,
    model_coefs,
    resolve_ranges,
    resolve_time_ranges,
)
from harness.tasks import is_time

KEYS = ("system", "shift", "resolution", "data")
DATA_SUFFIXES = (".h5", ".hdf5")


class EvalError(HarnessError):
    """An evaluation source a job cannot be scored on; ``key`` names the source's key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def parse_cli(data: str | None, resolution: int | None, fmt: str | None) -> dict[str, Any]:
    """`harness eval`'s ``--data`` (``SYSTEM``, ``SYSTEM:SHIFT`` or a data file), ``--resolution`` and
    ``--format`` (a file's; default arrays, pretraining-pdes for trajectories: :func:`check_eval` fills it)."""
    source: dict[str, Any] = {} if resolution is None else {"resolution": resolution}
    if data is None:
        return source
    if data.endswith(DATA_SUFFIXES):
        return {**source, "data": {"path": data, **({"format": fmt} if fmt else {})}}
    if fmt is not None:
        raise EvalError("data", f"--format {fmt} applies to a data file (.h5), not to system {data!r}: drop --format")
    system, _, shift = data.partition(":")
    return {**source, "system": system, **({"shift": shift} if shift else {})}


def label(source: Mapping[str, Any]) -> str:
    """A checked source's name in the rows and the report: ``system:shift``, or the data file's name."""
    if "data" in source:
        path = source["data"]["path"]
        return Path(path if isinstance(path, str) else path["test"]).stem
    shift = source["shift"]
    return f"{source['system']}:{shift if isinstance(shift, str) else '[' + ', '.join(map(str, shift)) + ']'}"


def check_eval(source: Mapping[str, Any], job: Job, *, base: str | None = None,
                 cache_dir: str | None = None) -> dict[str, Any]:
    """``source`` checked against ``job`` (module docstring) and resolved: system, shift, resolution, a data file's
    resolved spec, and its ``label``. Raises EvalError naming the key and the fix."""
    unknown = sorted(set(source) - set(KEYS))
    if unknown:
        raise EvalError(unknown[0], f"unknown key(s) {', '.join(map(str, unknown))}: an eval source takes "
                                    f"{', '.join(KEYS)}")
    out = _data_source(source, job, base, cache_dir) if "data" in source else _generated_source(source, job)
    _check_grid(job, out["resolution"])
    return {**out, "label": label(out)}


def _grid(value: Any) -> int:
    """A grid size: an even integer >= 8 (the sweep's ``resolution`` rule)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 8 or value % 2:
        raise EvalError("resolution", f"resolution must be an even integer >= 8, got {value!r}: use e.g. 32, 64 "
                                      "or 128")
    return value


def _check_grid(job: Job, resolution: int) -> None:
    """The job's model family runs on a ``resolution`` grid."""
    model, trained = job.config.model, job.config.resolution
    rules = family(arch_of(model))
    try:
        rules.check_evaluation_grid(trained, resolution)
        rules.check_grid(sizes_of(model), resolution)
    except HarnessError as exc:
        raise EvalError("resolution", f"{job.id} cannot be evaluated at {resolution}x{resolution}: {exc}") from None


def _generated_source(source: Mapping[str, Any], job: Job) -> dict[str, Any]:
    part, time = job.part, is_time(job.config)
    system = source.get("system", part.system)
    shift = source.get("shift", part.shift if system == part.system else "id")
    resolution = _grid(source.get("resolution", job.config.resolution))
    if part.data is not None:
        raise EvalError("system", f"{job.id} learnt from the data file {Path(str(part.data.paths['test'])).name}; "
                                  "generated data may not give its model the same channels: evaluate it on a data "
                                  "file (data: {path: ..., format: ...})")
    systems = (*ALL_TIME_SYSTEMS, TIME_MIXED) if time else (*SYSTEMS, MIXED)
    if system not in systems:
        raise EvalError("system", f"{system!r} is no system {job.id} ({job.config.task}) can be evaluated on: choose "
                                  f"one of {', '.join(systems)}")
    try:
        resolve_time_ranges(system, shift) if time else resolve_ranges(system, shift)
    except HarnessError as exc:
        raise EvalError("shift", str(exc)) from None
    if time and model_coefs(system) != model_coefs(part.system):
        raise EvalError("system", f"{system} has coefficient channels {', '.join(model_coefs(system))}, the model of "
                                  f"{job.id} takes {', '.join(model_coefs(part.system))}: choose a system of those")
    return {"system": system, "shift": shift, "resolution": resolution}


def _data_source(source: Mapping[str, Any], job: Job, base: str | None, cache_dir: str | None) -> dict[str, Any]:
    if set(source) & {"system", "shift"}:
        raise EvalError("data", "a data file names its own system and shift: drop system and shift, or data")
    part, cfg, time = job.part, job.config, is_time(job.config)
    spec = {"format": "pretraining-pdes" if time else "arrays", **source["data"]}
    resolution = _grid(source.get("resolution", cfg.resolution))
    frames = (cfg.forecast.nt, cfg.forecast.horizon) if cfg.forecast is not None else None
    try:
        resolved = resolve_part("eval", {"system": part.system, "shift": part.shift, "data": spec}, resolution,
                                frames=frames, base=base, cache_dir=cache_dir)
        theirs = dataclasses.replace(part, system=resolved["system"], shift=resolved["shift"],
                                     data=parse_spec(resolved["data"]))
        source_info("eval", theirs, {"test": part.n_test}, cache_dir=cache_dir)
        channels = (model_coefs(theirs.system), model_coefs(part.system)) if time else (
            model_channels("eval", theirs, cache_dir=cache_dir),
            model_channels(job.part_name, part, cache_dir=cache_dir))
    except HarnessError as exc:
        raise EvalError("data", str(exc)) from None
    if channels[0] != channels[1]:
        raise EvalError("data", f"{Path(str(theirs.data.paths['test'])).name} gives the model (inputs, outputs) or "
                                f"coefficients {channels[0]}, the model of {job.id} takes {channels[1]}: evaluate it "
                                "on data of its channels")
    return {"system": theirs.system, "shift": theirs.shift, "resolution": resolution, "data": resolved["data"]}


def parse_block(block: Any, path: str) -> list[dict[str, Any]]:
    """A sweep's `eval:` block: a list of mappings of ``KEYS``; SweepError-style one line naming the entry."""
    if block is None:
        return []
    if not isinstance(block, list) or not block or not all(isinstance(e, Mapping) and e for e in block):
        raise HarnessError(f"{path}: eval: must be a list of sources like [{{resolution: 32}}, {{system: helmholtz, "
                           f"shift: moderate}}], got {block!r}")
    return [dict(entry) for entry in block]


def with_evals(job: Job, sweep: Any, cache_dir: str | None = None) -> Job:
    """``job`` with the sweep's `eval:` sources checked against it (a trained downstream job; a pretraining is
    not scored); SweepError naming the entry and the key when one cannot be scored."""
    if not sweep.evals or job.stage == "pretrain":
        return job
    checked = []
    for i, source in enumerate(sweep.evals):
        try:
            checked.append(check_eval(source, job, base=str(Path(sweep.path).parent), cache_dir=cache_dir))
        except EvalError as exc:
            raise sweep.where.fail(f"eval.{i}.{exc.key}", f"{exc}", "change or remove that eval entry") from None
    return dataclasses.replace(job, evals=tuple(checked))
