"""The ``track:`` key of a sweep file, checked at expand against the trackers ``harness.track`` knows."""

from __future__ import annotations

from typing import Any

from harness.sweep.schema import Where, suggest
from harness.track import TRACKERS, WANDB_MODES


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
