"""A tracker never holds a job up: calls are queued for its own thread, and the job waits a bounded time at its
end for a tracker that hangs, which is then dropped with one warning."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from harness.track import worker


class Hanging:
    """A tracker whose service never answers once started."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.rows: list[dict] = []

    def start(self) -> None:
        self.release.wait(30)

    def log(self, row: dict) -> None:
        self.rows.append(row)

    def finish(self, summary: dict) -> None:
        pass


def test_a_hanging_tracker_costs_the_job_a_bounded_wait_and_one_warning(monkeypatch, caplog) -> None:
    monkeypatch.setattr(worker, "FINISH_TIMEOUT_S", 0.5)
    monkeypatch.setattr(worker, "_warned", set())
    hanging = [Hanging(), Hanging()]
    began = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="harness.track"):
        for tracker in hanging:  # two jobs in one worker process
            lane = worker._Lane("wandb", tracker)
            lane.put("start")
            trackers = worker.JobTrackers([lane])
            for step in range(1000):
                trackers.log({"step": step, "val_rel_l2": 1.0})
            assert time.monotonic() - began < 0.5 + (tracker is hanging[1])  # queued, not sent
            trackers.finish({"status": "ok"})
    assert time.monotonic() - began < 3  # 0.5 s per job
    assert [r.getMessage() for r in caplog.records] == [
        "harness: tracker wandb did not finish within 0.5 s (its run may be incomplete); the jobs go on without it "
        "(results are in Parquet as always)"]
    for tracker in hanging:
        tracker.release.set()


@pytest.mark.parametrize("error", [ImportError("No module named 'mlflow'"), RuntimeError("server said no")])
def test_a_failing_tracker_is_dropped_with_one_warning(monkeypatch, caplog, error: Exception) -> None:
    monkeypatch.setattr(worker, "_warned", set())

    class Failing(Hanging):
        def start(self) -> None:
            raise error

    with caplog.at_level(logging.WARNING, logger="harness.track"):
        for _ in range(2):  # two jobs in one worker process
            tracker = Failing()
            lane = worker._Lane("mlflow", tracker)
            lane.put("start")
            trackers = worker.JobTrackers([lane])
            trackers.log({"step": 0})
            trackers.finish({"status": "ok"})
            assert tracker.rows == []  # nothing sent after the failure
    (message,) = [r.getMessage() for r in caplog.records]
    expected = "is not installed or broken" if isinstance(error, ImportError) else "failed (RuntimeError: server"
    assert f"tracker mlflow {expected}" in message
