"""What a job's best model predicts on its first test samples: the fields `harness show` and the report's
gallery draw.

The inputs are built exactly as the job built them (``harness.run``'s data helpers: same split, seed, cache and
normalisation statistics); the weights are the job's ``ckpt/best.pt`` (a zero-shot job: its pretraining's).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness.errors import HarnessError
from harness.models.fno import FNO
from harness.run import _split, _stats_of, _tensors, data_cache  # the job's own data path, not a copy of it
from harness.store import run_dir, sweep_dir
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


def checkpoint_of(job: dict[str, Any], root: Path) -> Path:
    """The weights a job's predictions come from: its ``best.pt``, or its pretraining's for a zero-shot job."""
    owner = job["depends_on"] if job["stage"] == "zeroshot" else job["id"]
    return run_dir(sweep_dir(root, job["sweep"]), owner) / "ckpt" / "best.pt"


def predict_job(job: dict[str, Any], root: Path | str, samples: int = 3) -> Fields:
    """The first ``samples`` test samples of ``job`` with its best model's prediction (on the CPU).

    Raises HarnessError when the checkpoint is absent or the job's model predicts no solution (a pretext
    pretraining)."""
    root = Path(root)
    cfg, stage = job["config"], job["stage"]
    if stage == "pretrain" and cfg["pretrain"]["strategy"] != "supervised":
        raise HarnessError(f"{job['id']} is a {cfg['pretrain']['strategy']} pretraining: its head predicts no "
                           "solution; show one of its fine-tuning or zero-shot jobs instead")
    ckpt = checkpoint_of(job, root)
    if not ckpt.exists():
        raise HarnessError(f"{ckpt} is absent (the job has not finished, or the sweep was copied without its "
                           "checkpoints); run the job, or copy its run folder with ckpt/")
    part = cfg["pretrain"] if stage == "pretrain" else cfg["downstream"]
    res, dseed, cache = cfg["resolution"], 2 * cfg["data_seed"] + (stage != "pretrain"), data_cache(root)
    stats = _stats_of(job, root) if job["depends_on"] else _split(part, "train", part["n_train"], res, dseed,
                                                                  cache).stats
    test = _split(part, "test", part["n_test"], res, dseed, cache)
    x, y = _tensors(test, stats)
    model = FNO(width=cfg["model"]["width"], modes=cfg["model"]["modes"])
    load_weights(model, ckpt)
    model.eval()
    with torch.no_grad():
        prediction = model(x[:samples]).float()[:, 0].numpy()
    return Fields(job_id=job["id"], source=test.source[:samples], truth=y[:samples, 0].numpy(),
                  prediction=prediction,
                  coefficients={name: test.coefficients[:samples, i] for i, name in enumerate(test.channels)})
