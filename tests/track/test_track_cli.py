"""`harness submit --track NAME` from the command line: a sweep without a `track:` block sends its evaluations to
the named tracker, and the choice is kept for the sweep's later submits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.store.folders import run_dir
from harness.track.settings import load_settings
from tests.helpers import TINY, cli, harness, results, write_sweep

pytestmark = pytest.mark.slow
tb_events = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator",
                                reason="the tensorboard extra is not installed (pip install -e '.[tensorboard]')")

UNTRACKED = {**TINY, "name": "untracked", "matrix": {"downstream.n_train": [8], "init": ["pretrained"]}}
STEPS = {"pretrain": {"train": {"steps": 6, "eval_every": 2, "epochs": 1}},
         "train": {"steps": 4, "eval_every": 2, "epochs": 1}}
# Any network call would fail.
OFFLINE = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}


def tensorboard_scalars(folder: Path) -> dict[str, dict[int, float]]:
    """The scalars of the TensorBoard event files under a run folder, read with TensorBoard's own reader:
    tag -> {step: value}."""
    acc = tb_events.EventAccumulator(str(folder / "tensorboard"))
    acc.Reload()
    return {tag: {e.step: e.value for e in acc.Scalars(tag)} for tag in acc.Tags()["scalars"]}


def test_submit_track_sends_every_evaluation_and_is_kept_for_later_submits(tmp_path: Path) -> None:
    root = tmp_path / "results"
    cli(root, "expand", str(write_sweep(tmp_path, UNTRACKED, **STEPS)))
    folder = root / "untracked"
    assert load_settings(folder) == {}
    first = harness(root, "submit", "--track", "tensorboard", "--only", "pretrain", env=OFFLINE)
    assert load_settings(folder) == {"tensorboard": {}}
    later = harness(root, "submit", env=OFFLINE)  # no --track: the finetune job is tracked all the same
    assert "tracker" not in first.stdout + first.stderr + later.stdout + later.stderr  # no warning
    table = results(root, "untracked")
    assert sorted(table["stage"]) == ["finetune", "pretrain"] and (table["status"] == "ok").all()
    for job in table.itertuples():
        rows = pd.read_parquet(run_dir(folder, job.id) / "epochs.parquet")
        scalars = tensorboard_scalars(run_dir(folder, job.id))
        assert list(scalars["val_rel_l2"]) == rows["step"].tolist() and len(rows) >= 3, job.stage
        np.testing.assert_allclose(list(scalars["val_rel_l2"].values()), rows["val_rel_l2"], rtol=1e-6)
        assert scalars["summary/test_rel_l2"][job.steps_run] == pytest.approx(job.test_rel_l2, rel=1e-6)
