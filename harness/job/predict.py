"""What a job's best model predicts on its first test samples: the fields `harness show` and the report's
gallery draw.

The inputs are built exactly as the job built them, by its trained model (``harness.job.trained``: the job's data
path, its statistics and its ``ckpt/best.pt``, a zero-shot job's pretraining's).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from harness.errors import HarnessError
from harness.job import Job
from harness.job.run import data_cache, data_seed
from harness.job.trained import trained
from harness.tasks import is_time


@dataclass(frozen=True)
class Fields:
    """``samples`` test samples of one job: ``source``, ``truth``, ``prediction`` (k, R, R) and the samples'
    scalar ``coefficients`` by channel name."""

    job_id: str
    source: np.ndarray
    truth: np.ndarray
    prediction: np.ndarray
    coefficients: dict[str, np.ndarray]


def predict_job(job: Job, root: Path | str, samples: int = 3) -> Fields:
    """The first ``samples`` test samples of ``job`` with its best model's prediction (on the CPU).

    Raises HarnessError when the checkpoint is absent or the job's model predicts no solution (a pretext
    pretraining)."""
    if is_time(job.config):
        raise HarnessError(f"{job.id} is a {job.config.task} job: harness show draws the fields of steady jobs; "
                           "its rollout errors are in the report's rollout figure")
    model = trained(job, root)
    part = job.part
    test = model.task.load(part, "test", part.n_test, seed=data_seed(job), cache=data_cache(Path(root)))
    x, y = model.task.tensors(test, model.stats)
    with torch.no_grad():
        prediction = model.model(x[:samples]).float()[:, 0].numpy()
    return Fields(job_id=job.id, source=test.fields[:samples, 0], truth=y[:samples, 0].numpy(),
                  prediction=prediction,
                  coefficients={name: test.coefficients[:samples, i] for i, name in enumerate(test.channels)})
