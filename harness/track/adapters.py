"""One adapter per tracker: ``start()`` (imports its package, opens a run, sends the resolved config),
``log(row)`` (one evaluation row at its optimiser step), ``finish(summary)`` (the summary row, closes the run).

Each writes where the user looks for it: TensorBoard event files under ``<run folder>/tensorboard``, an MLflow
run in a file store at ``<sweep>/mlruns`` (or any ``tracking_uri``) in the experiment named after the sweep,
a W&B run under ``<run folder>/wandb`` grouped by sweep, typed by stage, named by job id (offline unless the
user is logged in or sets ``mode``).
"""

from __future__ import annotations

import json
import math
import netrc
import os
import time
from pathlib import Path
from typing import Any

from harness.job import Job
from harness.sweep.dotted import flatten

EXTRAS = {"tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb"}  # tracker -> its pip extra (pyproject)
ROW_SKIP = ("step",)


def row_metrics(row: dict[str, Any]) -> dict[str, float]:
    """The finite numbers of an evaluation row (train_loss is NaN before the first step), step excluded."""
    return {k: float(v) for k, v in row.items() if k not in ROW_SKIP and _finite(v)}


def summary_metrics(summary: dict[str, Any]) -> dict[str, float]:
    """The finite numbers of a summary row (booleans and config columns excluded)."""
    return {k: float(v) for k, v in summary.items() if "." not in k and _finite(v)}


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class TensorBoard:
    """Event files in ``<run folder>/tensorboard``: the config and summary as text, metrics as scalars."""

    def __init__(self, job: Job, sweep_path: Path, folder: Path, options: dict[str, str]) -> None:
        self.job, self.folder = job, folder

    def start(self) -> None:
        from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard package

        self.writer = SummaryWriter(log_dir=str(self.folder / "tensorboard"))
        config = json.dumps(self.job.to_dict(), indent=1, sort_keys=True, default=str)
        self.writer.add_text("config", f"```\n{config}\n```")

    def log(self, row: dict[str, Any]) -> None:
        for key, value in row_metrics(row).items():
            self.writer.add_scalar(key, value, int(row["step"]))

    def finish(self, summary: dict[str, Any]) -> None:
        step = int(summary.get("steps_run") or 0)
        for key, value in summary_metrics(summary).items():
            self.writer.add_scalar(f"summary/{key}", value, step)
        self.writer.add_text("status", f"{summary.get('status')}: {summary.get('error') or ''}", step)
        self.writer.close()


class MLflow:
    """A run named by job id in the sweep's experiment; the flattened config as params, metrics per step."""

    def __init__(self, job: Job, sweep_path: Path, folder: Path, options: dict[str, str]) -> None:
        self.job = job
        self.uri = options.get("tracking_uri") or (sweep_path / "mlruns").resolve().as_uri()
        self.experiment = options.get("experiment") or job.sweep

    def start(self) -> None:
        if self.uri.startswith("file:"):  # MLflow 3 keeps its file store behind this switch (sqlite needs sqlalchemy)
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=self.uri)
        tags = {"sweep": self.job.sweep, "stage": str(self.job.stage), "job_id": self.job.id}
        self.run_id = self.client.create_run(self._experiment_id(), run_name=self.job.id, tags=tags).info.run_id
        params = [Param(k, str(v)[:6000]) for k, v in flatten(self.job.to_dict()["config"], sort=True).items()]
        for i in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(self.run_id, params=params[i : i + 100])

    def _experiment_id(self) -> str:
        found = self.client.get_experiment_by_name(self.experiment)
        if found is not None:
            return found.experiment_id
        try:
            return self.client.create_experiment(self.experiment)
        except Exception:  # another job of the sweep created it first
            return self.client.get_experiment_by_name(self.experiment).experiment_id

    def _metrics(self, values: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, v, now, step) for k, v in values.items()])

    def log(self, row: dict[str, Any]) -> None:
        self._metrics(row_metrics(row), int(row["step"]))

    def finish(self, summary: dict[str, Any]) -> None:
        self._metrics({f"summary.{k}": v for k, v in summary_metrics(summary).items()},
                      int(summary.get("steps_run") or 0))
        self.client.set_tag(self.run_id, "status", str(summary.get("status")))
        self.client.set_terminated(self.run_id, "FINISHED" if summary.get("status") == "ok" else "FAILED")


def wandb_logged_in() -> bool:
    """Whether W&B has credentials here (WANDB_API_KEY or a netrc entry for its API host)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai").split("://")[-1].split("/")[0]
    try:
        return netrc.netrc().authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


class WandB:
    """A W&B run under ``<run folder>/wandb``: group = sweep, job type = stage, name = job id."""

    def __init__(self, job: Job, sweep_path: Path, folder: Path, options: dict[str, str]) -> None:
        self.job, self.folder, self.options = job, folder, options

    def start(self) -> None:
        import wandb

        mode = self.options.get("mode") or os.environ.get("WANDB_MODE") or (
            "online" if wandb_logged_in() else "offline")
        (self.folder / "wandb").mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(project=self.options.get("project", "harness"), entity=self.options.get("entity"),
                              group=self.job.sweep, job_type=str(self.job.stage), name=self.job.id,
                              dir=str(self.folder), mode=mode, config=self.job.to_dict()["config"],
                              settings=wandb.Settings(silent=True, console="off", x_disable_stats=True))

    def log(self, row: dict[str, Any]) -> None:
        self.run.log(row_metrics(row), step=int(row["step"]))

    def finish(self, summary: dict[str, Any]) -> None:
        self.run.summary.update({**summary_metrics(summary), "status": str(summary.get("status"))})
        self.run.finish(exit_code=0 if summary.get("status") == "ok" else 1)


ADAPTERS = {"tensorboard": TensorBoard, "mlflow": MLflow, "wandb": WandB}
