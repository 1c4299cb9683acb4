"""The ``track:`` block of a sweep: which trackers, with which options; validated at expand, kept in the sweep
folder as ``track.json`` (the one place a job reads it from).

``track: [tensorboard, mlflow, wandb]`` or, with options,
``track: {mlflow: {tracking_uri: http://host:5000}, wandb: {project: my-study, mode: offline}}``.
Pure and light: no tracker package is imported here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.files import write_json_atomic
from harness.sweep.schema import Where, suggest

# Tracker name -> its options and what each must be (checked at expand).
TRACKERS: dict[str, dict[str, str]] = {
    "tensorboard": {},
    "mlflow": {"tracking_uri": "a tracking URI (default: a file store at <sweep>/mlruns)",
               "experiment": "an experiment name (default: the sweep name)"},
    "wandb": {"project": "a W&B project (default: harness)", "entity": "a W&B entity (team or user)",
              "mode": "offline or online (default: online when logged in, else offline)"},
}
WANDB_MODES = ("offline", "online")
FILE = "track.json"


def parse_track(value: Any, where: Where, loc: str = "track") -> dict[str, dict[str, str]]:
    """The ``track:`` value as {tracker name: {option: value}}; raises SweepError naming the bad entry."""
    if value is None:
        return {}
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list):
        entries = {}
        for i, name in enumerate(value):
            if not isinstance(name, str):
                raise where.fail(f"{loc}.{i}", f"expected a tracker name, got {name!r}",
                                 "write e.g. `track: [tensorboard, mlflow]`")
            entries[name] = {}
        value = entries
    if not isinstance(value, dict):
        raise where.fail(loc, f"expected a list of tracker names or a mapping, got {value!r}",
                         "write e.g. `track: [tensorboard, mlflow, wandb]`")
    return {name: _options(name, options, where, f"{loc}.{name}") for name, options in value.items()}


def _options(name: Any, options: Any, where: Where, loc: str) -> dict[str, str]:
    if name not in TRACKERS:
        raise where.fail(loc, f"unknown tracker {name!r}", suggest(str(name), tuple(TRACKERS)))
    options = options or {}
    if not isinstance(options, dict):
        raise where.fail(loc, f"expected a mapping of options, got {options!r}",
                         f"write `{name}: {{}}` or options: {', '.join(TRACKERS[name]) or 'none'}")
    for key, option in options.items():
        if key not in TRACKERS[name]:
            known = tuple(TRACKERS[name])
            raise where.fail(f"{loc}.{key}", f"{name} has no option `{key}`",
                             suggest(str(key), known) if known else f"{name} takes no options")
        if not isinstance(option, str) or not option:
            raise where.fail(f"{loc}.{key}", f"expected a text value, got {option!r}", TRACKERS[name][key])
        if key == "mode" and option not in WANDB_MODES:
            raise where.fail(f"{loc}.{key}", f"invalid mode {option!r}", "choose offline or online")
    return dict(options)


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
