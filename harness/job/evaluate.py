"""A trained model scored on another source (``harness.sweep.evals``): its test metrics there, as rows of the run
folder's ``eval.parquet``.

The job's config with the source's data part and grid gives the task that loads the source's test split; its
inputs are normalised with the job's own statistics (the model sees what it would see in use) and scored by the
task's own test evaluation (``Task.test_metrics``: the columns of the job's summary, whatever metrics it holds).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from harness.data.samples import Samples
from harness.data.tensors import fits
from harness.errors import HarnessError, error_line
from harness.job import Downstream, Job, JobConfig, Pretrain, TrainConfig
from harness.store.folders import EVAL_ROWS, write_parquet_atomic
from harness.tasks.make import make_task

KEY = ("source", "resolution")  # a row per source and grid: scoring again replaces it


def score(job: Job, model: nn.Module, stats: dict[str, Any], source: dict[str, Any], *, seed: int, cache: Path,
          device: torch.device | str = "cpu") -> dict[str, Any]:
    """The eval row of ``model`` (``job``'s, normalising with ``stats``) on a checked ``source``
    (``harness.sweep.evals.check_eval``): its test split of the job's size, drawn with data seed ``seed``."""
    config, part, row = _where(job, source)
    task = make_task(config)
    objective = task.strategy(part) if job.stage == "pretrain" else task.objective((job.train or TrainConfig()).loss)
    test = task.load(part, "test", part.n_test, seed=seed, cache=cache)
    if isinstance(test, Samples) and not fits(stats, test):
        raise HarnessError(f"{source['label']}: its samples are normalised by rule {test.normalise} with "
                           f"{test.coefficients.shape[1]} coefficients, which the statistics of {job.id} do not "
                           "fit: evaluate it on data of its kind")
    metrics = task.test_metrics(model, task.tensors(test, stats), objective, torch.device(device))
    return {**row, **metrics, "status": "ok", "error": ""}


def score_each(job: Job, model: nn.Module, stats: dict[str, Any], sources: list[dict[str, Any]], *, seed: int,
               cache: Path, device: torch.device | str = "cpu") -> list[dict[str, Any]]:
    """``score`` on each source in turn. A source whose scoring raises (out of memory at a larger grid, a data file
    gone since expand) gets a row with status ``failed`` and the error instead of metrics, and a warning on stderr:
    the job keeps its own test, and the report leaves the row out of its table and figure."""
    rows = []
    for source in sources:
        try:
            rows.append(score(job, model, stats, source, seed=seed, cache=cache, device=device))
        except Exception as exc:
            error = error_line(exc)
            print(f"harness: warning: {job.id} not scored on {source['label']} at {source['resolution']}: {error}",
                  file=sys.stderr, flush=True)
            rows.append({**_where(job, source)[2], "status": "failed", "error": error})
    return rows


def _where(job: Job, source: dict[str, Any]) -> tuple[JobConfig, Pretrain | Downstream, dict[str, Any]]:
    """The job's config on ``source``, its data part there and the row's columns naming the two."""
    changes = {k: source[k] for k in ("system", "shift", "data") if k in source}
    part = dataclasses.replace(job.part, **changes)
    name = "pretrain" if job.stage == "pretrain" else "downstream"
    config = dataclasses.replace(job.config, resolution=source["resolution"], **{name: part})
    return config, part, {"id": job.id, "source": source["label"], "system": part.system, "shift": str(part.shift),
                          "resolution": source["resolution"], "trained_resolution": job.config.resolution,
                          "n_test": part.n_test}


def record(run_folder: Path, rows: list[dict[str, Any]]) -> Path:
    """Add ``rows`` to the run folder's eval.parquet, replacing earlier rows of the same source and grid."""
    path = run_folder / EVAL_ROWS
    old = pd.read_parquet(path) if path.is_file() else pd.DataFrame(columns=list(KEY))
    new = pd.DataFrame(rows)
    keep = old[~old.set_index(list(KEY)).index.isin(new.set_index(list(KEY)).index)]
    write_parquet_atomic(path, pd.concat([keep, new], ignore_index=True) if len(keep) else new)
    return path
