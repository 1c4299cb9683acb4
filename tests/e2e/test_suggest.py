"""`harness suggest` end to end: a tiny real sweep run, its suggested include: block appended to the sweep file,
expanded, submitted and reported gives the target a narrower interval."""

from __future__ import annotations

from pathlib import Path

import yaml

from analysis.claims import claims_for
from harness import api
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
