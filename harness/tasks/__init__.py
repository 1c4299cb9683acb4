"""Tasks: what a job learns from its data and how it is scored (``task: steady | fixed_future | next_step``).

``harness.tasks.spec`` (torch-free, read by ``harness expand``): the keys, their defaults and every rule a sweep
point must keep. ``harness.tasks.make.make_task(config)`` builds a job's ``Task`` (``harness.tasks.task``):
``SteadyTask`` (``harness.tasks.steady``) or ``ForecastTask`` (``harness.tasks.forecast``, with the shared
trajectory objective in ``harness.tasks.trajectories`` and the pretext tasks in ``harness.tasks.pretext``).
"""
