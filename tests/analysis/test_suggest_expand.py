"""`harness suggest` runs its candidates through `harness expand`'s checks: a candidate expand would refuse (here
an N above the rows the sweep's data file holds) is dropped before the pick, named with expand's reason, and the
written block expands."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import yaml
from click.testing import CliRunner

from harness import api
from harness.backends import largest_device
from harness.cli import main
from harness.models import FLOAT_BYTES
from harness.store.folders import write_summary

ROWS = 30  # 24 in the file's training region (val 0.1 and test 0.1 held out): N 25 does not fit
SWEEP = {
    "name": "filed",
    "base": {"resolution": 16, "init": "scratch", "model": {"width": 4, "modes": 4},
             "downstream": {"data": {"path": "mine.npz", "format": "arrays"}, "n_val": 2, "n_test": 2},
             "train": {"steps": 3, "batch_size": 1}},
    "matrix": {"downstream.n_train": [1, 5], "seed": [0, 1]},
}  # fmt: skip
# N 1 and 5 in steps of 5: the candidates are N 1, 5 and 25 (none below 1), each training 3 samples (batch 1), so
# the same price; N 25, the farthest in log N, narrows the exponent most, and expand refuses it
TARGET = "b.scratch.arrays.mine.w4m4"


def _run_sweep(tmp_path: Path) -> tuple[Path, Path]:
    """The sweep file and folder of SWEEP, planned, with results on a known law written as a run writes them."""
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "mine.npz", inputs=rng.standard_normal((ROWS, 2, 16, 16)).astype("f4"),
             targets=rng.standard_normal((ROWS, 1, 16, 16)).astype("f4"))
    sweep_file = tmp_path / "filed.yaml"
    sweep_file.write_text(yaml.safe_dump(SWEEP, sort_keys=False))
    plan = api.expand(sweep_file, tmp_path)
    for job in plan.jobs:  # every run costs one second
        n = job.config.downstream.n_train
        err = 0.8 * n**-0.4 * math.exp(rng.normal(0.0, 0.05))
        write_summary(plan.folder, job, {"status": "ok", "test_rel_l2": err, "best_val_rel_l2": err,
                                         "steps_run": 3}, wall_s=1.0)  # fmt: skip
    return sweep_file, plan.folder


def _suggest(tmp_path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["suggest", "filed", "--root", str(tmp_path), "--target", TARGET,
                                       "--budget", "1", "--k", "3"])
    return result.exit_code, result.output


def test_a_candidate_expand_refuses_is_dropped_and_named(tmp_path: Path) -> None:
    sweep_file, folder = _run_sweep(tmp_path)
    code, out = _suggest(tmp_path)
    assert code == 0, out
    block = folder / "suggest" / f"{TARGET}.yaml"
    points = yaml.safe_load(block.read_text())["include"]
    assert len(points) == 3 and all(p["downstream.n_train"] <= 5 for p in points), points
    lines = out.strip().splitlines()
    dropped = lines.index("dropped 1 candidate run(s) that `harness expand` refuses:")
    assert lines[dropped + 1].startswith("  {downstream.n_train: 25, seed: 0}: downstream.data at point "
                                         "(downstream.n_train=25, seed=0): downstream.data: "), lines[dropped + 1]
    assert "n_train = 25 is more than the 24 of its 30 rows in the train region" in lines[dropped + 1]
    sweep_file.write_text(sweep_file.read_text() + block.read_text())
    assert len(api.expand(sweep_file, tmp_path).jobs) == 4 + 3



def test_a_block_whose_runs_overfill_a_fused_group_is_refused_in_one_line(tmp_path: Path) -> None:
    # a packed sweep at N 1 and N1; each candidate at N1^2 holds 0.4 of the largest device here (128x128 samples of
    # 8 float32 channels, resident) and expands alone, but three of them in one fused group (pack.group 4) do not
    n1 = math.isqrt(int(0.4 * largest_device().bytes) // (8 * 128 * 128 * FLOAT_BYTES))
    sweep = {"name": "packed", "pack": {"mode": "fused", "group": 4},
             "base": {**SWEEP["base"], "resolution": 128, "stream": {"mode": "never"},
                      "downstream": {"n_val": 2, "n_test": 2}},
             "matrix": {"downstream.n_train": [1, n1], "seed": [0, 1]}}  # fmt: skip
    (tmp_path / "packed.yaml").write_text(yaml.safe_dump(sweep, sort_keys=False))
    plan = api.expand(tmp_path / "packed.yaml", tmp_path)
    for job in plan.jobs:
        err = 0.8 * job.config.downstream.n_train**-0.4 * (1.05 if job.config.seed else 0.95)
        write_summary(plan.folder, job, {"status": "ok", "test_rel_l2": err, "best_val_rel_l2": err,
                                         "steps_run": 3}, wall_s=1.0)  # fmt: skip
    result = CliRunner().invoke(main, ["suggest", "packed", "--root", str(tmp_path), "--target",
                                       "b.scratch.poisson.id.w4m4", "--budget", "1", "--k", "3"])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and re.match(r"error: --target b\.scratch\.poisson\.id\.w4m4: the suggested runs do not "
                                        r"expand with the sweep: .*packed\.yaml: pack\.group: pack\.group = 4 "
                                        r"trains 4 of the sweep's 7 scratch jobs of one shape \(the largest at "
                                        rf"point \(downstream\.n_train={n1 * n1}, ", lines[0]), lines
    assert not (plan.folder / "suggest").exists()
