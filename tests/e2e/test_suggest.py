"""`harness suggest` end to end: a tiny real sweep run, its suggested include: block appended to the sweep file,
expanded, submitted and reported gives the target a narrower interval."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import yaml

from analysis.claims import claims_for
from analysis.synthetic import JOINT_SCRATCH
from harness import api
from harness.models import count_params
from harness.store.folders import write_summary
from tests.helpers import cli

TARGET = "b.scratch.poisson.id.w8m4"
# Scratch on 16x16 Poisson, width 8, 100 steps: it learns (b about 0.1-0.3), each run a few CPU seconds. Two N and
# two seeds leave the exponent 2 degrees of freedom: a wide interval that a few runs narrow.
SWEEP = {
    "name": "suggested",
    "base": {"resolution": 16, "init": "scratch", "model": {"width": 8, "modes": 4},
             "downstream": {"n_val": 16, "n_test": 32}, "train": {"steps": 100, "lr": 1.0e-2, "batch_size": 8}},
    "matrix": {"downstream.n_train": [16, 64], "seed": [0, 1]},
}  # fmt: skip


def _width(folder: Path) -> float:
    claim = claims_for(folder).set_index("id").loc[TARGET]
    return float(claim["hi"] - claim["lo"])


def test_the_suggested_runs_narrow_the_targets_interval(tmp_path: Path):
    sweep_file = tmp_path / "suggested.yaml"
    sweep_file.write_text(yaml.safe_dump(SWEEP, sort_keys=False))
    plan = api.expand(sweep_file, tmp_path)
    api.submit(plan, root=tmp_path, backend="inline", echo=lambda line: None)
    before = _width(plan.folder)

    out = cli(tmp_path, "suggest", "suggested", "--target", TARGET, "--budget", "1", "--k", "3")
    block = plan.folder / "suggest" / f"{TARGET}.yaml"
    assert f"include block: {block}" in out and len(out.strip().splitlines()) == 2 + 3 + 1
    points = yaml.safe_load(block.read_text())["include"]
    assert len(points) == 3 and all(set(p) == {"downstream.n_train", "seed"} for p in points)

    sweep_file.write_text(sweep_file.read_text() + block.read_text())
    plan = api.expand(sweep_file, tmp_path)
    assert len(plan.jobs) == 4 + 3
    api.submit(plan, root=tmp_path, backend="inline", echo=lambda line: None)
    assert _width(plan.folder) < 0.8 * before


JOINT_SWEEP = {
    "name": "joint",
    "base": {"resolution": 16, "init": "scratch", "model": {"modes": 4}, "downstream": {"n_val": 16, "n_test": 32},
             "train": {"epochs": 20, "lr": 1.0e-2, "batch_size": 8}},
    "matrix": {"model.width": [8, 16, 32], "downstream.n_train": [8, 32, 128, 512], "seed": [0, 1]},
}  # fmt: skip


def test_suggest_names_model_sizes_for_the_compute_optimal_size(tmp_path: Path):
    """A planned sweep whose results follow a known joint law (written through the store, as a run writes them;
    FLOPs and costs are the plan's own): ``harness suggest --target popt...`` prices candidates at every size and
    one width step beyond each end, and writes sweep points that expand to real jobs of those sizes."""
    sweep_file = tmp_path / "joint.yaml"
    sweep_file.write_text(yaml.safe_dump(JOINT_SWEEP, sort_keys=False))
    plan = api.expand(sweep_file, tmp_path)
    rng = np.random.default_rng(0)
    for job in plan.jobs:
        p = count_params(job.config.model.width, job.config.model.modes)
        err = float(JOINT_SCRATCH.err(p, job.config.downstream.n_train)) * math.exp(rng.normal(0.0, 0.05))
        write_summary(plan.folder, job, {"status": "ok", "test_rel_l2": err, "best_val_rel_l2": err, "n_params": p,
                                         "steps_run": job.train.budget(job.part.n_train).total_steps},
                      wall_s=1e-9 * p * job.config.downstream.n_train)  # fmt: skip
    target = "popt.scratch.poisson.id.c1e10"  # P* mid-range of the sizes (1e9 to 1e11 are claimed)
    assert target in set(claims_for(plan.folder, n_boot=20)["id"])
    out = cli(tmp_path, "suggest", "joint", "--target", target, "--budget", "1000", "--k", "4")
    block = plan.folder / "suggest" / f"{target}.yaml"
    assert f"include block: {block}" in out and "the log of P*" in out
    points = yaml.safe_load(block.read_text())["include"]
    assert len(points) == 4 and all({"model.width", "downstream.n_train", "seed"} <= set(p) for p in points)
    assert {p["model.width"] for p in points} <= {4, 8, 16, 32, 64}
    sweep_file.write_text(sweep_file.read_text() + block.read_text())
    assert len(api.expand(sweep_file, tmp_path).jobs) == len(plan.jobs) + 4
