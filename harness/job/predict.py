"""What a job's best model predicts on its first test samples: the fields `harness show` and the report's
gallery draw.

The inputs are built exactly as the job built them (its task's data path, ``harness.tasks``, with
``harness.job.run``'s data seed, cache and the pretraining's statistics); the weights are the job's
``ckpt/best.pt`` (a zero-shot job: its pretraining's).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from harness.data.parts import model_channels
from harness.errors import HarnessError
from harness.job import Job
from harness.job.run import _stats_of, data_cache, data_seed  # the job's own data path, not a copy of it
from harness.models.build import model_of
from harness.store.folders import run_dir, sweep_dir
from harness.tasks import is_time
from harness.tasks.make import make_task
from harness.train.loop import load_weights


@dataclass(frozen=True)
class Fields:
    """``samples`` test samples of one job: ``source``, ``truth``, ``prediction`` (k, R, R) and the samples'
    scalar ``coefficients`` by channel name."""

    job_id: str
    source: np.ndarray
    truth: np.ndarray
    prediction: np.ndarray
    coefficients: dict[str, np.ndarray]


def checkpoint_of(job: Job, root: Path) -> Path:
    """The weights a job's predictions come from: its ``best.pt``, or its pretraining's for a zero-shot job."""
    owner = job.depends_on if job.stage == "zeroshot" and job.depends_on else job.id
    return run_dir(sweep_dir(root, job.sweep), owner) / "ckpt" / "best.pt"


def predict_job(job: Job, root: Path | str, samples: int = 3) -> Fields:
    """The first ``samples`` test samples of ``job`` with its best model's prediction (on the CPU).

    Raises HarnessError when the checkpoint is absent or the job's model predicts no solution (a pretext
    pretraining)."""
    root = Path(root)
    cfg, stage, part = job.config, job.stage, job.part
    if is_time(cfg):
        raise HarnessError(f"{job.id} is a {cfg.task} job: harness show draws the fields of steady jobs; "
                           "its rollout errors are in the report's rollout figure")
    if stage == "pretrain" and cfg.pretrain and cfg.pretrain.strategy != "supervised":
        raise HarnessError(f"{job.id} is a {cfg.pretrain.strategy} pretraining: its head predicts no "
                           "solution; show one of its fine-tuning or zero-shot jobs instead")
    ckpt = checkpoint_of(job, root)
    if not ckpt.exists():
        raise HarnessError(f"{ckpt} is absent (the job has not finished, or the sweep was copied without its "
                           "checkpoints); run the job, or copy its run folder with ckpt/")
    task = make_task(cfg)
    dseed, cache = data_seed(job), data_cache(root)
    stats = _stats_of(job, root) if job.depends_on else None
    if part.n_train is not None:  # as the job: the pretraining's statistics where they fit its training split
        stats = task.stats(task.load(part, "train", part.n_train, seed=dseed, cache=cache), stats)
    test = task.load(part, "test", part.n_test, seed=dseed, cache=cache)
    x, y = task.tensors(test, stats)
    ins, outs = model_channels(job.part_name, part)
    model = model_of(cfg.model, in_channels=ins, out_channels=outs, resolution=cfg.resolution)
    load_weights(model, ckpt)
    model.eval()
    with torch.no_grad():
        prediction = model(x[:samples]).float()[:, 0].numpy()
    return Fields(job_id=job.id, source=test.fields[:samples, 0], truth=y[:samples, 0].numpy(),
                  prediction=prediction,
                  coefficients={name: test.coefficients[:samples, i] for i, name in enumerate(test.channels)})
