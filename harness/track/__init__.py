"""Experiment trackers (TensorBoard, MLflow, Weights & Biases): optional, off by default, never in a job's way.

A sweep's ``track:`` block (or ``harness submit --track NAME``) names the trackers; ``harness.sweep.track``
validates it at expand, which keeps the choice in ``<sweep>/track.json``; ``harness.run.run_job`` opens
``JobTrackers`` for each job, which sends the resolved config, every evaluation row and the summary row to
each tracker from a background thread (``worker``), so a missing, broken or slow tracker costs the job one
warning and nothing else.
Parquet stays the source of truth; the trackers get copies.
"""

from harness.track.settings import TRACKERS, load_settings, save_settings
from harness.track.worker import JobTrackers, clear_warnings, open_trackers

__all__ = ["TRACKERS", "JobTrackers", "clear_warnings", "load_settings", "open_trackers",
           "save_settings"]
