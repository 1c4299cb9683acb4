"""A finished job's trained model, rebuilt as the job built it: what `harness show`, `harness export` and
`harness eval` start from.

``trained(job, root)`` gives the job's task, its objective, its best weights in its model (a zero-shot job: its
pretraining's) and the normalisation statistics its inputs were built with (the job's own data path:
``harness.job.run``'s data seed, cache and pretraining statistics). A pretext pretraining is refused: its head
predicts no solution.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from harness.errors import HarnessError
from harness.job import Job, TrainConfig
from harness.job.run import _stats_of, data_cache, data_seed  # the job's own data path, not a copy of it
from harness.store import State
from harness.store.folders import read_summary, run_dir, sweep_dir
from harness.tasks.make import make_task
from harness.tasks.task import Task
from harness.tasks.trajectories import Trajectories
from harness.train.loop import load_weights
from harness.train.strategies import Pretraining


@dataclass(frozen=True)
class Trained:
    """A job's ``task``, ``objective`` and ``model`` (best weights, eval mode, CPU) and the ``stats`` its inputs are
    normalised with; ``normalise`` the steady samples' rule (``instance`` or ``channel``), None for a time task;
    ``channels`` the names of its coefficient inputs."""

    job: Job
    task: Task
    objective: Pretraining
    model: nn.Module
    stats: dict[str, Any]
    normalise: str | None
    channels: tuple[str, ...]  # the coefficient inputs' names, in order


def checkpoint_of(job: Job, root: Path) -> Path:
    """The weights a job's predictions come from: its ``best.pt``, or its pretraining's for a zero-shot job."""
    owner = job.depends_on if job.stage == "zeroshot" and job.depends_on else job.id
    return run_dir(sweep_dir(root, job.sweep), owner) / "ckpt" / "best.pt"


def find_job(jobs: list[Job], job_id: str, sweep: str) -> Job:
    """The job ``job_id`` of a plan's ``jobs``; HarnessError naming the sweep and how to list its jobs."""
    job = next((j for j in jobs if j.id == job_id), None)
    if job is None:
        raise HarnessError(f"no job {job_id!r} in sweep {sweep}; `harness status` and `harness submit --dry-run` "
                           "list its jobs (pass --sweep for another sweep)")
    return job


def ended_ok(job: Job, root: Path, command: str) -> dict[str, Any]:
    """The summary row of a job that ended ok; HarnessError otherwise (``command`` names what needs it)."""
    summary = read_summary(run_dir(sweep_dir(root, job.sweep), job.id))
    status = (summary or {}).get("status", State.MISSING.value)
    if status != State.OK:
        raise HarnessError(f"{job.id} ended {status}, not ok: {command} needs a trained job; run it with "
                           "`harness submit` (or pick a job that `harness status` lists ok)")
    return summary


def objective_of(job: Job, task: Task) -> Pretraining:
    """The objective a job's model was trained with (its pretraining strategy for a pretraining); refused for a
    pretext pretraining, whose head predicts no solution."""
    cfg = job.config
    if job.stage == "pretrain":
        assert cfg.pretrain is not None  # a pretraining's config holds its settings
        if cfg.pretrain.strategy != "supervised":
            raise HarnessError(f"{job.id} is a {cfg.pretrain.strategy} pretraining: its head predicts no solution; "
                               "use one of its fine-tuning or zero-shot jobs instead")
        return task.strategy(cfg.pretrain)
    return task.objective((job.train or TrainConfig()).loss)


def trained(job: Job, root: Path | str) -> Trained:
    """``job``'s trained model and the statistics its inputs are built with (module docstring). Raises
    HarnessError for a pretext pretraining or an absent checkpoint."""
    root = Path(root)
    cfg, part = job.config, job.part
    task = make_task(cfg)
    objective = objective_of(job, task)
    ckpt = checkpoint_of(job, root)
    if not ckpt.exists():
        raise HarnessError(f"{ckpt} is absent (the job has not finished, or the sweep was copied without its "
                           "checkpoints); run the job, or copy its run folder with ckpt/")
    dseed, cache = data_seed(job), data_cache(root)
    stats = _stats_of(job, root) if job.depends_on else None
    split, n = ("train", part.n_train) if part.n_train is not None else ("test", part.n_test)
    data = task.load(part, split, n, seed=dseed, cache=cache)
    if split == "train":  # as the job: the pretraining's statistics where they fit its training split
        stats = task.stats(data, stats)
    assert stats is not None  # a job without a training split is zero-shot, which has its pretraining's
    model = task.model(objective, job.part_name, part, cfg.model)
    load_weights(model, ckpt)
    model.eval()
    channels = objective.channels if isinstance(objective, Trajectories) else data.channels
    return Trained(job, task, objective, model, {k: v for k, v in stats.items() if k != "layout"},
                   _normalise_of(stats), tuple(channels))


def _normalise_of(stats: dict[str, Any]) -> str | None:
    """The steady rule statistics were made by (``harness.data.samples.compute_stats``); None for a time task's."""
    if "median_source_norm" in stats:
        return "instance"
    return "channel" if "field_scale" in stats else None

