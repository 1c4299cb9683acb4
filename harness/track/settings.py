"""The ``track:`` block of a sweep: which trackers, with which options; validated at expand
(``harness.sweep.trackers``), kept in the sweep folder as ``track.json`` (the one place a job reads it from).

``track: [tensorboard, mlflow, wandb]`` or, with options,
``track: {mlflow: {tracking_uri: http://host:5000}, wandb: {project: my-study, mode: offline}}``.
Pure and light: no tracker package is imported here; the trackers and their options are ``harness.track``'s.
"""

from __future__ import annotations

import json
from pathlib import Path

from harness.store.atomic import write_json_atomic

FILE = "track.json"


def save_settings(sweep_path: Path, trackers: dict[str, dict[str, str]]) -> None:
    """Keep the sweep's trackers in ``<sweep>/track.json`` (none: the file is removed)."""
    path = Path(sweep_path) / FILE
    if trackers:
        write_json_atomic(path, trackers)
    else:
        path.unlink(missing_ok=True)


def load_settings(sweep_path: Path) -> dict[str, dict[str, str]]:
    """The sweep's trackers ({} when it has none)."""
    path = Path(sweep_path) / FILE
    return json.loads(path.read_text()) if path.exists() else {}
