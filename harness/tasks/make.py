"""``make_task(config, stream)``: the ``Task`` of a job's config."""

from __future__ import annotations

from harness.job import JobConfig, StreamConfig
from harness.tasks import is_time
from harness.tasks.steady_task import SteadyTask
from harness.tasks.task import Task
from harness.tasks.time_task import ForecastTask


def make_task(config: JobConfig, stream: StreamConfig | None = None) -> Task:
    """``ForecastTask`` for a fixed_future or next_step job, else ``SteadyTask``, whose training set streams as
    ``stream`` (the job's ``stream`` settings, None: the defaults) says."""
    return ForecastTask(config) if is_time(config) else SteadyTask(config, stream)
