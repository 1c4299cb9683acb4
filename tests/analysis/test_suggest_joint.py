"""The compute-optimal target's candidate sizes: a size one width step beyond a sweep's is given the parameter count
its jobs' model would have, with the channels of the sweep's task (not the steady task's)."""

from pathlib import Path

import pytest
import yaml

from analysis.load import load_runs
from analysis.suggest_joint import candidate_sizes
from harness import api
from harness.job.run import run_job
from harness.sweep.estimate import job_kernel

# next-step prediction on heat: a window of 3 frames and the coefficient channels in, one frame out
NEXT_STEP = {"name": "forecast", "base": {
    "task": "next_step", "resolution": 16, "nt": 5, "time_window": 3, "model": {"modes": 4},
    "downstream": {"system": "heat", "n_train": 4, "n_val": 2, "n_test": 2},
    "train": {"steps": 1, "batch_size": 4}}, "matrix": {"init": ["scratch"], "model.width": [2, 4, 8]}}


def test_a_size_beyond_a_time_task_sweep_gets_the_parameters_its_run_has(tmp_path: Path) -> None:
    (tmp_path / "forecast.yaml").write_text(yaml.safe_dump(NEXT_STEP))
    plan = api.expand(tmp_path / "forecast.yaml", tmp_path / "results")
    for job in plan.jobs:
        assert run_job(job, tmp_path / "results")["status"] == "ok"
    runs = load_runs(tmp_path / "results" / "forecast").ok.sort_values("model.width")
    kernel = job_kernel(plan.jobs[0])
    assert kernel.in_channels != 7  # not the steady task's channels
    sizes = candidate_sizes(runs[runs["model.width"] < 8], kernel)  # widths 2 and 4: one step up is width 8
    widest = runs[runs["model.width"] == 8].iloc[0]
    assert sizes[(("model.width", 8), ("model.modes", 4))] == pytest.approx(float(widest["n_params"]), rel=1e-12)
    assert (("model.width", 1), ("model.modes", 4)) in sizes  # and one step down
