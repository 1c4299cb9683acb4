"""Human-readable summary of an expanded sweep (pure: returns text)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from harness.job import Job
from harness.store import Stage
from harness.sweep.expand import count_points
from harness.sweep.spec import Sweep
from harness.sweep.tune import for_stage

SAMPLE_ROWS = 6


def _fmt(value: Any) -> str:
    return f"[{value[0]:g}, {value[1]:g}]" if isinstance(value, list) else str(value)


def describe(sweep: Sweep, jobs: list[Job], folder: Path) -> str:
    """Counts per stage and per axis, a few sample jobs, and where the plan was written."""
    stages = Counter(j.stage for j in jobs)
    lines = [f"sweep {sweep.name}: {count_points(sweep)} points -> {len(jobs)} jobs "
             f"({', '.join(f'{s} {stages[s]}' for s in Stage if stages[s])})"]
    pretrain_users = Counter(j.depends_on for j in jobs if j.depends_on)
    if pretrain_users:
        shared = sum(pretrain_users.values())
        lines.append(f"  {len(pretrain_users)} pretraining jobs shared by {shared} downstream jobs")
    tune = sweep.tune or {"stages": []}
    blocks = ({stage: for_stage(tune, stage) for stage in tune["stages"]} if "by_stage" in tune
              else {"/".join(tune["stages"]): tune} if tune["stages"] else {})
    for stages, t in blocks.items():
        lines.append(f"  tune: {t['n_trials']} trials per {stages} point ({t['sampler']} sampler, "
                     f"pruner {t['pruner']}, metric {t['metric']}) over {', '.join(t['params'])}")
    lines.append("axes:")
    for axis in sweep.axes:
        values = sweep.matrix.get(axis) or next(g[axis] for g in sweep.zips if axis in g)
        lines.append(f"  {axis:24s} {len(values):3d} values: {', '.join(_fmt(v) for v in values[:10])}"
                     + (" ..." if len(values) > 10 else ""))
    lines.append("sample jobs:")
    for job in jobs[:: max(1, len(jobs) // SAMPLE_ROWS)][:SAMPLE_ROWS]:
        point = ", ".join(f"{k}={_fmt(v)}" for k, v in job.point.items())
        lines.append(f"  {job.id}  {job.stage:9s} {point}")
    lines.append(f"plan: {folder / 'plan.json'} (current sweep; next: harness submit)")
    return "\n".join(lines)
