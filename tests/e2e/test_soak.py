"""Soak (issue 16): a 61-job sweep while a loop kills random workers and the submit itself, re-running submit until
every job is ok; the final results equal an undisturbed run's and no job's evaluations were run twice.

Long (minutes on 2 cores): marked ``soak`` and run only by hand, `HARNESS_SOAK=1 pytest -s tests/e2e/test_soak.py`.
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pandas as pd
import pytest

from harness.store.folders import load_plan, run_dir
from tests.helpers import TINY, cli, harness, results, start_harness, workers, write_sweep

pytestmark = [pytest.mark.soak,
              pytest.mark.skipif(not os.environ.get("HARNESS_SOAK"), reason="soak test: set HARNESS_SOAK=1")]

SPEC = {**TINY, "name": "soak", "matrix": {"init": ["pretrained", "scratch"], "downstream.n_train": [8, 16],
                                           "seed": {"range": [0, 14]}}}
SPEC["base"] = {**TINY["base"], "model": {"width": 4, "modes": 4},
                "pretrain": {**TINY["base"]["pretrain"], "train": {"epochs": 4, "lr": 3.0e-3, "batch_size": 16,
                                                                   "checkpoint_every_s": 0}},
                "train": {"epochs": 4, "lr": 1.0e-3, "batch_size": 4, "eval_every": 2, "checkpoint_every_s": 0}}
METRICS = ["id", "status", "test_rel_l2", "best_val_rel_l2", "best_step", "steps_run"]
MAX_KILLS = 25


def test_a_sweep_under_random_kills_ends_equal_to_an_undisturbed_one(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path, SPEC)
    clean = tmp_path / "clean"
    cli(clean, "expand", str(sweep))
    harness(clean, "submit", "--workers", "2")
    root = tmp_path / "killed"
    cli(root, "expand", str(sweep))
    rng = random.Random(0)
    kills = {"worker": 0, "submit": 0}
    start, submits = time.time(), 0
    while True:
        submits += 1
        proc = start_harness(root, "submit", "--workers", "2")
        while proc.poll() is None:
            time.sleep(rng.uniform(1.0, 4.0))
            if proc.poll() is not None or sum(kills.values()) >= MAX_KILLS:
                continue
            if rng.random() < 0.3:
                proc.send_signal(signal.SIGKILL)
                kills["submit"] += 1
            elif found := workers(proc.pid):
                os.kill(rng.choice(found), signal.SIGKILL)
                kills["worker"] += 1
        proc.communicate()
        if proc.returncode == 0 and harness(root, "submit", "--dry-run").stdout.startswith("soak: 0 of 61 jobs"):
            break
        assert submits < 4 * MAX_KILLS, "the sweep never finished"
    minutes = (time.time() - start) / 60
    a, b = results(clean, "soak")[METRICS], results(root, "soak")[METRICS]
    pd.testing.assert_frame_equal(a, b)
    for job in load_plan(root / "soak"):
        if job.stage == "zeroshot":
            continue
        ours = pd.read_parquet(run_dir(root / "soak", job.id) / "epochs.parquet")
        theirs = pd.read_parquet(run_dir(clean / "soak", job.id) / "epochs.parquet")
        assert ours["step"].is_unique and ours["step"].tolist() == theirs["step"].tolist()
        assert ours["val_rel_l2"].tolist() == theirs["val_rel_l2"].tolist()
    print(f"\nsoak: {len(a)} jobs, {kills['worker']} worker kills and {kills['submit']} submit kills survived, "
          f"{submits} submits, {minutes:.1f} min")
