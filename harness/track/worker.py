"""``JobTrackers``: one job's trackers, each fed from its own background thread.

The job only queues calls (``log`` never waits); ``finish`` waits for the queues to drain, at most
``FINISH_TIMEOUT_S`` in all. A tracker whose package is missing, whose call raises or that does not finish in
time is dropped with one warning per submit and tracker (the first worker process to warn leaves a mark in
``<sweep>/.track-warned/``, which ``harness submit`` clears); the job and its Parquet files are never affected.
"""

from __future__ import annotations

import logging
import os
import queue
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from harness.errors import error_line
from harness.job import Job
from harness.track.adapters import ADAPTERS, EXTRAS
from harness.track.settings import load_settings

FINISH_TIMEOUT_S = 60.0
WARNED = ".track-warned"
log = logging.getLogger("harness.track")
_warned: set[str] = set()


def warn_once(name: str, problem: str, sweep_path: Path | None = None) -> None:
    """One warning per tracker: per process, and per submit of the sweep at ``sweep_path`` across its workers."""
    if name in _warned:
        return
    _warned.add(name)
    if sweep_path is not None:
        try:
            (Path(sweep_path) / WARNED).mkdir(exist_ok=True)
            os.close(os.open(Path(sweep_path) / WARNED / name, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:  # another worker of this submit has warned
            return
        except OSError:
            pass
    log.warning("harness: tracker %s %s; the jobs go on without it (results are in Parquet as always)",
                name, problem)


def clear_warnings(sweep_path: Path) -> None:
    """A new submit: each tracker may warn once again."""
    shutil.rmtree(Path(sweep_path) / WARNED, ignore_errors=True)


def _problem(name: str, exc: BaseException) -> str:
    if isinstance(exc, ImportError):
        return f"is not installed or broken ({type(exc).__name__}: {exc}); pip install 'harness[{EXTRAS[name]}]'"
    return f"failed ({error_line(exc)})"


class _Lane:
    """One tracker's calls, made in order on a daemon thread; after the first failure the rest are dropped."""

    def __init__(self, name: str, tracker: Any, sweep_path: Path | None = None) -> None:
        self.name, self.tracker, self.failed, self.sweep_path = name, tracker, False, sweep_path
        self.calls: queue.Queue[tuple[str, tuple[Any, ...]] | None] = queue.Queue()
        self.thread = threading.Thread(target=self._drain, name=f"harness-track-{name}", daemon=True)
        self.thread.start()

    def put(self, method: str, *args: Any) -> None:
        self.calls.put((method, args))

    def _drain(self) -> None:
        while (call := self.calls.get()) is not None:
            if self.failed:
                continue
            method, args = call
            try:
                getattr(self.tracker, method)(*args)
            except BaseException as exc:  # noqa: BLE001 -- any tracker failure, import errors included
                self.failed = True
                warn_once(self.name, _problem(self.name, exc), self.sweep_path)

    def close(self, deadline: float) -> None:
        self.calls.put(None)
        self.thread.join(timeout=max(0.0, deadline - time.monotonic()))
        if self.thread.is_alive():
            warn_once(self.name, f"did not finish within {FINISH_TIMEOUT_S:g} s (its run may be incomplete)",
                      self.sweep_path)


class JobTrackers:
    """The trackers of one job: ``log(row)`` per evaluation (an ``on_eval`` hook), ``finish(summary)`` once."""

    def __init__(self, lanes: list[_Lane]) -> None:
        self.lanes = lanes

    def log(self, row: dict[str, Any]) -> None:
        for lane in self.lanes:
            lane.put("log", dict(row))

    def finish(self, summary: dict[str, Any]) -> None:
        deadline = time.monotonic() + FINISH_TIMEOUT_S
        for lane in self.lanes:
            lane.put("finish", dict(summary))
        for lane in self.lanes:
            lane.close(deadline)


def open_trackers(job: Job, sweep_path: Path, folder: Path) -> JobTrackers:
    """The trackers ``<sweep>/track.json`` names, started for ``job`` (whose run folder is ``folder``)."""
    lanes = []
    for name, options in load_settings(sweep_path).items():
        lane = _Lane(name, ADAPTERS[name](job, Path(sweep_path), Path(folder), options), Path(sweep_path))
        lane.put("start")
        lanes.append(lane)
    return JobTrackers(lanes)
