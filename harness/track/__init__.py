"""The torch-free rules of the experiment trackers (TensorBoard, MLflow, Weights & Biases): which there are and
the options each takes. Trackers are optional, off by default, never in a job's way.

A sweep's ``track:`` block (or ``harness submit --track NAME``) names the trackers; ``harness.sweep.trackers``
validates it at expand, which keeps the choice in ``<sweep>/track.json``; ``harness.job.run.run_job`` opens
``JobTrackers`` for each job, which sends the resolved config, every evaluation row and the summary row to
each tracker from a background thread (``worker``), so a missing, broken or slow tracker costs the job one
warning and nothing else.
Parquet stays the source of truth; the trackers get copies.
"""

from __future__ import annotations

# Tracker name -> its options and what each must be (checked at expand).
TRACKERS: dict[str, dict[str, str]] = {
    "tensorboard": {},
    "mlflow": {"tracking_uri": "a tracking URI (default: a file store at <sweep>/mlruns)",
               "experiment": "an experiment name (default: the sweep name)"},
    "wandb": {"project": "a W&B project (default: harness)", "entity": "a W&B entity (team or user)",
              "mode": "offline or online (default: online when logged in, else offline)"},
}
WANDB_MODES = ("offline", "online")
