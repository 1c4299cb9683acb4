"""Matrix -> jobs: a pure function from a validated `Sweep` to the list of stage jobs.

Example: `matrix: {init: [pretrained, scratch], downstream.n_train: [8, 16]}` expands to four points and
five jobs: one shared pretraining job, two fine-tuning jobs that name it in `depends_on`, two scratch jobs.
Each job's config holds only the keys its stage reads, so its id (a hash of that config) is shared by every
point that needs the same work: deduplication falls out of hashing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.backends import Device, SlurmResources, largest_device, largest_host, offer, resource_problem
from harness.errors import SweepError
from harness.job import ConfigError, Job, JobConfig, Point, Resources, StreamConfig
from harness.models import Memory
from harness.pde import LAYOUT_VERSION
from harness.store import Stage
from harness.sweep.checks import Bounds, check_packed, check_point, resolve_data
from harness.sweep.dotted import copy_tree, set_dotted
from harness.sweep.evals import with_evals
from harness.sweep.families import resolve_family
from harness.sweep.pack import pack_problem
from harness.sweep.spec import MAX_JOBS, Sweep
from harness.sweep.tune import for_stage, trial_configs
from harness.tasks import task_keys


def job_id(stage: str, config: JobConfig) -> str:
    """Stable id: stage prefix + the first 10 hex digits of sha256 over the canonical JSON of the config and the
    data's channel layout version (so results of another layout are never taken for this one's)."""
    canonical = json.dumps({"stage": str(stage), **config.to_dict(), "layout": LAYOUT_VERSION}, sort_keys=True,
                           separators=(",", ":"))
    return f"{Stage(stage).prefix}-{hashlib.sha256(canonical.encode()).hexdigest()[:10]}"


def count_points(sweep: Sweep) -> int:
    """Points the matrix implies before exclusions (product of axis lengths times zip lengths) plus includes."""
    sizes = [len(v) for v in sweep.matrix.values()] + [len(next(iter(g.values()))) for g in sweep.zips]
    return math.prod(sizes) + len(sweep.include)


def max_trials(sweep: Sweep) -> int:
    """The most trial jobs one point's stage expands to (1 when the sweep is not tuned)."""
    tune = sweep.tune
    return max((for_stage(tune, stage)["n_trials"] for stage in tune["stages"]), default=1) if tune else 1


def _points(sweep: Sweep) -> Iterator[dict[str, Any]]:
    """Every matrix point as {dotted axis: value}: the Cartesian product of axes and zip groups, then includes."""
    factors: list[list[dict[str, Any]]] = [[{k: v} for v in values] for k, values in sweep.matrix.items()]
    for group in sweep.zips:
        keys = list(group)
        factors.append([dict(zip(keys, row, strict=True)) for row in zip(*group.values(), strict=True)])
    for combo in itertools.product(*factors):
        point = {k: v for part in combo for k, v in part.items()}
        if not any(all(point.get(k) == v for k, v in ex.items()) for ex in sweep.exclude):
            yield point
    yield from (dict(inc) for inc in sweep.include)


def resolve(sweep: Sweep, point: dict[str, Any], cache_dir: str | None = None) -> Point:
    """The resolved config of one point: defaults, then `base`, then the point's assignments, with its data files
    checked and resolved (``harness.sweep.checks.resolve_data``, their fingerprints cached in ``cache_dir``) and
    its model group resolved into its family's sizes (``harness.sweep.families``); train or stream settings that
    break a rule between them, and a model its family refuses, are refused at the point."""
    tree = copy_tree(sweep.base)
    for key, value in point.items():
        set_dotted(tree, key, value)
    try:
        config = Point.from_dict(resolve_data(point, tree, sweep.where, str(Path(sweep.path).parent), cache_dir))
    except ConfigError as exc:
        raise sweep.where.at_point(exc.key, point, str(exc)) from None
    return resolve_family(point, config, sweep.where)  # the model group -> the family's sizes


def data_seed_of(config: Point, part: str) -> int:
    """The data seed of a point's ``part`` (pretrain or downstream): ``data_seed`` when the sweep sets it, else the
    part's own seed (``pretrain.seed``; ``seed`` downstream), so that a sweep's seeds vary the data drawn (which N
    samples, which validation and test samples) together with the initialisation. Seed 0 draws what a fixed
    ``data_seed: 0`` draws."""
    if config.data_seed is not None:
        return config.data_seed
    return config.pretrain.seed if part == "pretrain" else config.seed


def stage_configs(config: Point) -> list[tuple[Stage, JobConfig]]:
    """The (stage, stage config) pairs one resolved point needs, pretraining first.

    A pretraining config holds data, model and pretraining settings only; a zero-shot config has no training
    settings nor downstream size (it only evaluates); scratch has no pretraining keys. The task keys are the
    stage's (``harness.tasks.task_keys``): none for steady.
    """
    init = config.init
    if init == "pretrained" and config.pretrain.strategy == "none":
        init = "scratch"  # the `none` strategy is training from scratch
    pretrain = dataclasses.replace(config.pretrain, resources=None)  # the ranks go on the job
    out: list[tuple[Stage, JobConfig]] = []
    pretrain_id = None
    if init in ("pretrained", "zeroshot"):
        pt = JobConfig(config.resolution, data_seed_of(config, "pretrain"), config.model,
                       forecast=task_keys(config, pretext=pretrain.strategy != "supervised"), pretrain=pretrain)
        pretrain_id = job_id(Stage.PRETRAIN, pt)
        out.append((Stage.PRETRAIN, pt))
    downstream = config.downstream
    if downstream.n_val_fraction > 0 and init != "zeroshot":  # validation in proportion to N, with a floor
        n_val = max(downstream.n_val_min, math.ceil(downstream.n_val_fraction * downstream.n_train))
        downstream = dataclasses.replace(downstream, n_val=n_val)
    job = JobConfig(config.resolution, data_seed_of(config, "downstream"), config.model, forecast=task_keys(config))
    if init == "zeroshot":
        job = dataclasses.replace(job, downstream=dataclasses.replace(downstream, n_train=None))
    else:
        job = dataclasses.replace(job, seed=config.seed, downstream=downstream, train=config.train)
    if pretrain_id:  # the pretraining settings ride along so result rows can be grouped by them
        job = dataclasses.replace(job, pretrain_id=pretrain_id, pretrain=pretrain)
    out.append((Stage.of_init(init), job))
    return out


def expand(sweep: Sweep, *, force: bool = False, device: Device | None = None,
           cache_dir: str | None = None) -> list[Job]:
    """All jobs of a sweep, deduplicated by id, pretraining jobs first, in first-appearance order.

    Every point is checked first (``harness.sweep.checks``), its memory against ``device`` (default: the
    largest device a backend offers, ``largest_device``) and the largest host memory; data files' fingerprints
    are cached in ``cache_dir`` (the results root's data cache, ``harness.pde.cache.data_cache``).
    """
    n, trials = count_points(sweep), max_trials(sweep)
    if n * trials > MAX_JOBS and not force:
        each = f" of up to {trials} trials each, {n * trials} jobs" if trials > 1 else ""
        raise SweepError(f"{sweep.path}: the matrix implies {n} points{each} (> {MAX_JOBS}); narrow the axes"
                         f"{' or tune.n_trials' if each else ''}, or pass --force if you mean it")
    slurm = SlurmResources.from_dict(sweep.slurm)
    bounds = Bounds(device or largest_device(slurm), largest_host(slurm), cache_dir)
    pretrain: dict[str, Job] = {}
    downstream: dict[str, Job] = {}
    memory: dict[str, Memory | None] = {}  # what each job's training holds on its device (None: it trains nothing)
    tune = sweep.tune
    if tune is not None and sweep.pack is not None:
        raise sweep.where.fail("pack", "a tuned sweep's trials cannot be fused (each is pruned on its own)",
                               "drop `pack:` or `tune:`")
    offered = offer(sweep.slurm)
    for point in _points(sweep):
        config = resolve(sweep, point, cache_dir)
        stages = stage_configs(config)
        held = check_point(point, config, stages, sweep.where, bounds)
        if problem := resource_problem(config, [stage for stage, _ in stages], offered,
                                       tuple(tune["stages"]) if tune else ()):
            raise sweep.where.at_point(problem[0], point, problem[1])
        if sweep.pack is not None and (problem := pack_problem(config)):
            raise sweep.where.at_point(problem[0], point, problem[1])
        for stage, cfg in stages:
            tuned = tune is not None and stage in tune["stages"]
            trials = trial_configs(cfg, job_id(stage, cfg), for_stage(tune, stage)) if tuned else [cfg]
            table = pretrain if stage == "pretrain" else downstream
            res = config.pretrain.resources if stage == "pretrain" else config.resources
            for trial_cfg in trials:
                jid = job_id(stage, trial_cfg)
                if jid not in table:
                    table[jid] = Job(jid, stage, sweep.name, trial_cfg, depends_on=cfg.pretrain_id, point=point,
                                     tune_storage=tune["storage"] if tuned else None,
                                     resources=res if res != Resources() else None,
                                     stream=config.stream if config.stream != StreamConfig() and
                                     stage != "zeroshot" else None,
                                     pack=sweep.pack if stage != "zeroshot" else None)
                    table[jid] = with_evals(table[jid], sweep, cache_dir)
                    memory[jid] = held.get(stage)
    if not downstream and not pretrain:
        raise SweepError(f"{sweep.path}: every point was excluded; loosen `exclude`")
    jobs = [*pretrain.values(), *downstream.values()]
    if sweep.pack is not None:
        check_packed(jobs, memory, sweep.where, bounds.device)
    return jobs
