"""A live view of a sweep: ``harness status --watch`` redraws the status table, the running jobs with their
step, epoch and ETA, and the recent failures, every few seconds.

Each training job leaves ``progress.json`` in its run folder at every evaluation (``progress_hook``, chained by
``harness.job.run``); the view reads it for the jobs the backend does not count as done (one ``Backend.status`` call
per refresh: on Slurm, one ``sacct``). A local job is running while it has progress and no summary.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from harness.job import Job
from harness.store import State
from harness.store.atomic import write_json_atomic
from harness.store.folders import run_dir
from harness.store.status import status_table

PROGRESS = "progress.json"
MAX_RUNNING = 20  # running jobs listed per refresh


def progress_hook(job: Job, folder: Path) -> Callable[[dict[str, Any]], None]:
    """An evaluation hook writing ``folder/progress.json``: step, total steps, epoch, training seconds so far
    (only training calls it: the budget is read from the job's train settings then)."""
    seconds = 0.0

    def hook(row: dict[str, Any]) -> None:
        nonlocal seconds
        seconds += float(row["seconds"])
        assert job.train is not None and job.part.n_train is not None  # only a training job evaluates as it goes
        total = job.train.budget(job.part.n_train).total_steps
        write_json_atomic(folder / PROGRESS, {"step": int(row["step"]), "total_steps": total,
                                              "epoch": float(row["epoch"]), "seconds": seconds,
                                              "time": time.time()})

    return hook


def running_lines(sweep_path: Path, jobs: list[Job], states: dict[str, State],
                  now: float | None = None) -> list[str]:
    """One line per job in progress (running, or started and not done): step/total, epoch, ETA, last update."""
    now = time.time() if now is None else now
    lines = []
    for job in jobs:
        state = states.get(job.id, State.MISSING)
        if state.is_done() or state in (State.FAILED, State.DIVERGED, State.BLOCKED):
            continue
        path = run_dir(sweep_path, job.id) / PROGRESS
        if not path.exists():
            continue
        p = json.loads(path.read_text())
        eta = p["seconds"] / p["step"] * (p["total_steps"] - p["step"]) if p["step"] else float("nan")
        lines.append(f"  {job.id} {job.stage:9s} step {p['step']}/{p['total_steps']}  epoch {p['epoch']:.2f}"
                     f"  eta {_duration(eta)}  (updated {_duration(now - p['time'])} ago)")
    more = f"  ... and {len(lines) - MAX_RUNNING} more" if len(lines) > MAX_RUNNING else ""
    return (["running:"] + lines[:MAX_RUNNING] + ([more] if more else [])) if lines else ["running: none"]


def _duration(seconds: float) -> str:
    if seconds != seconds:  # NaN: no step yet
        return "?"
    minutes, s = divmod(int(seconds), 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m{s:02d}s" if minutes else f"{s}s"


def view(sweep_path: Path, jobs: list[Job], states: dict[str, State]) -> str:
    """One refresh: the status table (with the failures), then the jobs in progress."""
    return "\n".join([status_table(sweep_path, jobs, states), *running_lines(sweep_path, jobs, states)])


def watch(render: Callable[[], str], interval: float, refreshes: int | None) -> None:
    """Call ``render`` every ``interval`` seconds (``refreshes`` times, None: until Ctrl-C) and show it: in place
    on a terminal, one block per refresh (headed by the time) otherwise."""
    count = 0
    with contextlib.suppress(KeyboardInterrupt):
        while refreshes is None or count < refreshes:
            if count:
                time.sleep(interval)
            text = render()
            if sys.stdout.isatty():
                click.clear()
            click.echo(f"-- {time.strftime('%H:%M:%S')} (every {interval:g} s; Ctrl-C stops)\n{text}")
            count += 1
