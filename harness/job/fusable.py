"""Which jobs may train as one program (fused training, ``harness.train.fused``), torch-free.

A sweep's `pack: {mode: fused, group: K}` puts a ``Pack`` on each of its training jobs (not in their ids: how
jobs run, not what they compute). Jobs of one stage whose models have one structure and whose batches have one
shape (``shape_key``: resolution, model family and sizes, task keys, the part's system or data file, which fix
the channels, pretraining strategy, batch size and precision) may share a program; their seeds, learning rates,
schedules, N, validation sets and budgets may all differ. ``fused_groups`` cuts a list of jobs into such
groups of at most K, in order; a job without ``Pack`` (a zero-shot job, trained by nobody) stays alone.
"""

from __future__ import annotations

import json

from harness.job.record import Job


def shape_key(job: Job) -> str | None:
    """What jobs trained together must share, as canonical JSON; None for a job that is never fused."""
    train = job.train
    if job.pack is None or train is None or job.world_size > 1:
        return None
    part = job.part
    strategy = job.config.pretrain.strategy if job.config.pretrain is not None else None
    key = {"stage": str(job.stage), "resolution": job.config.resolution, "model": job.config.model.to_dict(),
           "forecast": job.config.forecast.to_dict() if job.config.forecast else None, "system": part.system,
           "data": part.data, "strategy": strategy, "batch_size": train.batch_size, "precision": train.precision,
           "pack": job.pack.to_dict()}
    return json.dumps(key, sort_keys=True, default=str)


def fused_groups(jobs: list[Job]) -> list[list[Job]]:
    """``jobs`` cut into groups that may train as one program: each job joins the first earlier group of its
    ``shape_key`` that is not full (``pack.group``), else starts one; groups in the order of their first job."""
    groups: list[list[Job]] = []
    open_groups: dict[str, list[Job]] = {}
    for job in jobs:
        key = shape_key(job)
        group = open_groups.get(key) if key is not None else None
        if group is None:
            group = []
            groups.append(group)
            if key is not None:
                open_groups[key] = group
        group.append(job)
        if key is not None and job.pack is not None and len(group) >= job.pack.group:
            open_groups.pop(key)
    return groups
