"""A sweep's `tune:` block, pure: its schema (checked at expand) and the trial jobs it expands to.

`expand` turns every tuned downstream job into `n_trials` trial jobs (ids differ by the trial index) that share
one study: a trial's config gains `tune: {study, trial, spec}` (``harness.job.Trial``; the study is the untuned
job's id, the spec the search definition as JSON). The optuna side, a trial's life at run time, is `harness.job.trial`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

from harness.job import JobConfig, Trial
from harness.store import Stage
from harness.sweep.schema import Where, check_key, check_value

METRICS = ("val_rel_l2",)  # tuning reads validation only; the test error is reported, never optimised
SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("none", "median", "successive_halving")
KINDS = ("log_uniform", "uniform", "int", "choice", "grid")
STAGES = (Stage.FINETUNE.value, Stage.SCRATCH.value)
KEYS = ("params", "n_trials", "metric", "sampler", "seed", "pruner", "storage", "stages")


def _space(params: Any, where: Where, at: str = "tune.params") -> dict[str, dict[str, Any]]:
    """Validate `params` (written at ``at``): {train.key: {kind: args}} -> {train.key: {"kind": kind, "values" |
    "low","high"}}."""
    if not isinstance(params, dict) or not params:
        raise where.fail(at, "no parameters to search", "add e.g. `train.lr: {log_uniform: [1e-5, 1e-2]}`")
    space = {}
    for key, spec in params.items():
        loc = f"{at}.{key}"
        if not str(key).startswith("train."):
            raise where.fail(
                loc, f"`{key}` cannot be tuned", "tune downstream train settings: train.lr, train.weight_decay, ..."
            )
        check_key(key, where, loc)
        if not (isinstance(spec, dict) and len(spec) == 1 and next(iter(spec)) in KINDS):
            raise where.fail(
                loc, f"invalid search space {spec!r}", "write {KIND: ...} with KIND one of " + ", ".join(KINDS)
            )
        ((kind, args),) = spec.items()
        if kind in ("choice", "grid"):
            if not isinstance(args, list) or not args:
                raise where.fail(loc, f"{kind} needs a non-empty list of values", f"write {{{kind}: [a, b, c]}}")
            space[key] = {"kind": kind, "values": [check_value(key, v, where, loc) for v in args]}
            continue
        if not (isinstance(args, list) and len(args) == 2):
            raise where.fail(loc, f"{kind} needs [low, high], got {args!r}", f"write {{{kind}: [low, high]}}")
        low, high = (check_value(key, a, where, loc) for a in args)
        if not low < high:
            raise where.fail(
                loc, f"`low < high` must hold, but got (low={low}, high={high})", "swap or widen the range"
            )
        if kind == "log_uniform" and low <= 0:
            raise where.fail(loc, f"log_uniform needs low > 0, got {low}", "use a positive lower bound")
        space[key] = {"kind": kind, "low": low, "high": high}
    return space


def _stage_spaces(params: Any, where: Where) -> dict[str, dict[str, dict[str, Any]]] | None:
    """`params` keyed by stage ({scratch: {train.lr: ...}, finetune: {...}}), each space validated; None when
    `params` is one space for every tuned stage."""
    if not (isinstance(params, dict) and params and all(key in STAGES for key in params)):
        return None
    return {stage: _space(space, where, f"tune.params.{stage}") for stage, space in params.items()}


def parse_tune(raw: Any, where: Where) -> dict[str, Any] | None:
    """Validate a sweep's `tune:` block into a canonical dict (None when there is no block).

    `params` is one search space for every tuned stage, or one per stage (keys `finetune`, `scratch`: e.g. a
    wider learning-rate grid for training from scratch); then the stages tuned are those named, and
    ``for_stage`` gives each stage's block."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise where.fail("tune", "must be a mapping", "write `tune: {params: {train.lr: {grid: [1e-4, 1e-3]}}}`")
    for key in raw:
        if key not in KEYS:
            raise where.fail(f"tune.{key}", f"unknown tune key `{key}`", "valid keys: " + ", ".join(KEYS))
    by_stage = _stage_spaces(raw.get("params"), where)
    if by_stage is not None:
        if "stages" in raw:
            raise where.fail("tune.stages", "the stages tuned are those `params` names", "omit `stages`")
        blocks = {stage: _parse({**raw, "stages": [stage]}, space, where) for stage, space in by_stage.items()}
        return {"stages": sorted(blocks), "storage": blocks[min(blocks)]["storage"], "by_stage": blocks}
    return _parse(raw, _space(raw.get("params"), where), where)


def _parse(raw: dict[str, Any], space: dict[str, dict[str, Any]], where: Where) -> dict[str, Any]:
    """The canonical block of a validated search ``space`` and the other keys of ``raw``."""
    choices = {"metric": (METRICS, "val_rel_l2"), "sampler": (SAMPLERS, "tpe"), "pruner": (PRUNERS, "none")}
    tune: dict[str, Any] = {"params": space, "seed": raw.get("seed", 0)}
    for key, (valid, default) in choices.items():
        value = raw.get(key, default)
        if value not in valid:
            why = "the test error is never used for tuning" if value == "test_rel_l2" else "it is not logged"
            problem = f"cannot tune on {value!r}: {why}" if key == "metric" else f"unknown {key} {value!r}"
            raise where.fail(f"tune.{key}", problem, "choose one of " + ", ".join(valid))
        tune[key] = value
    stages = raw.get("stages", list(STAGES))
    if not isinstance(stages, list) or not stages or not set(stages) <= set(STAGES):
        raise where.fail("tune.stages", f"invalid stages {stages!r}", "choose from " + ", ".join(STAGES))
    tune["stages"] = sorted(stages)
    if tune["sampler"] == "grid" and any(s["kind"] not in ("grid", "choice") for s in space.values()):
        raise where.fail("tune.sampler", "the grid sampler needs every parameter as {grid: [...]}", "use tpe or random")
    grid = math.prod(len(s["values"]) for s in space.values()) if tune["sampler"] == "grid" else None
    n_trials = raw.get("n_trials", grid)
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
        raise where.fail("tune.n_trials", f"must be an integer >= 1, got {n_trials!r}", "write `n_trials: 20`")
    if grid is not None and n_trials != grid:
        raise where.fail("tune.n_trials", f"the grid has {grid} points but n_trials is {n_trials}", "omit n_trials")
    tune["n_trials"] = n_trials
    storage = raw.get("storage")
    if storage is not None and not isinstance(storage, str):
        raise where.fail(
            "tune.storage", f"invalid storage {storage!r}", "give a database URL, or omit it for a journal file"
        )
    tune["storage"] = storage
    return tune


def for_stage(tune: dict[str, Any], stage: str) -> dict[str, Any]:
    """The tune block of one stage: the sweep's, or that stage's own when `params` is given per stage."""
    return tune["by_stage"][stage] if "by_stage" in tune else tune


def trial_configs(config: JobConfig, study: str, tune: dict[str, Any]) -> list[JobConfig]:
    """One config per trial: the point's config plus {study, trial index, search definition} (``tune`` is one
    stage's block, ``for_stage``)."""
    spec = json.dumps({k: v for k, v in tune.items() if k != "storage"}, sort_keys=True)
    return [dataclasses.replace(config, tune=Trial(study, k, spec)) for k in range(tune["n_trials"])]
