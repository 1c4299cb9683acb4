"""Streaming in jobs: the sweep's `stream` group, checked at expand, and a streamed job's result equal to the
resident one's through the real CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from harness.backends import largest_device, largest_host
from harness.cli import main
from harness.data.samples import Samples
from harness.job import Downstream, JobConfig, Model, StreamConfig
from harness.models import FLOAT_BYTES
from harness.pde import generated_bytes
from harness.tasks.steady_task import SteadyTask
from harness.train.stream import StreamedSplit
from tests import data_layouts
from tests.helpers import cli, harness, results, write_sweep

RESULT = ["id", "status", "test_rel_l2", "best_val_rel_l2", "best_step", "steps_run", "epochs_run"]
# A scratch job of a few steps on 16x16 Poisson (seconds).
SCRATCH = {"name": "s", "base": {"resolution": 16, "init": "scratch", "model": {"width": 4, "modes": 4},
                                 "downstream": {"n_train": 12, "n_val": 8, "n_test": 8},
                                 "train": {"steps": 6, "batch_size": 5, "lr": 1.0e-2, "eval_every": 2,
                                           "augment": "shift"}}}
# A training set at 128x128 (8 float32 channels a sample resident, 2 while it is generated) one and a half times the
# largest device here: it cannot be held resident, one batch of 8 fits, and it can be generated (expand refuses a
# set that cannot: harness.pde.generated_bytes).
DEVICE, HOST = largest_device(), largest_host()
N_HUGE = int(1.5 * DEVICE.bytes) // (8 * 128 * 128 * FLOAT_BYTES)
HUGE = (f"name: h\nbase:\n  init: scratch\n  model: {{width: 4, modes: 4}}\n  downstream: {{n_train: {N_HUGE}, "
        "n_val: 16, n_test: 16}\n  train: {batch_size: 8}\n")


def _expand(tmp_path: Path, text: str) -> tuple[int, str, Path]:
    tmp_path.mkdir(exist_ok=True)
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(text)
    root = tmp_path / "results"
    result = CliRunner().invoke(main, ["expand", str(sweep), "--root", str(root)])
    return result.exit_code, result.output, root


@pytest.mark.slow  # end to end: two real `harness submit` processes
def test_a_job_streamed_through_the_cli_gives_the_resident_result(tmp_path: Path) -> None:
    rows = {}
    for mode in ("never", "always"):
        (tmp_path / mode).mkdir()
        sweep = write_sweep(tmp_path / mode, {**SCRATCH, "base": {**SCRATCH["base"], "stream": {"mode": mode}}})
        root = tmp_path / mode / "results"
        cli(root, "expand", str(sweep))
        harness(root, "submit", str(sweep), "--backend", "inline")
        rows[mode] = results(root, "s")[RESULT]
        plan = json.loads((root / "s" / "plan.json").read_text())
        assert plan["jobs"][0]["stream"]["mode"] == mode  # on the job, not in its config (the id)
        assert "stream" not in plan["jobs"][0]["config"]
    assert rows["always"]["status"].tolist() == ["ok"]
    assert rows["always"].equals(rows["never"])  # same id, test error and run length, bit for bit


def test_the_steady_task_streams_a_generated_training_split_only_as_told(tmp_path: Path) -> None:
    part = Downstream(system="poisson", shift="id")
    config = JobConfig(16, 0, Model())

    def load(mode: str, split: str = "train") -> object:
        return SteadyTask(config, StreamConfig(mode)).load(part, split, 12, seed=1, cache=tmp_path)

    streamed, resident = load("always"), load("never")
    assert isinstance(streamed, StreamedSplit)  # the file is generated first, then streamed
    assert isinstance(resident, Samples) and isinstance(load("auto"), Samples)  # 12 samples fit
    task = SteadyTask(config)
    assert task.stats(streamed, None) == resident.stats  # the split's own statistics, as resident
    pretrained = {**resident.stats, "median_source_norm": 2.5}
    assert task.stats(streamed, pretrained) is pretrained  # a pretrained model's where they fit, as resident
    assert task.stats(resident, pretrained) is pretrained
    assert isinstance(load("always", "val"), Samples)  # validation and test stay resident
    assert isinstance(SteadyTask(config, StreamConfig("auto", 1e-9)).load(part, "train", 12, seed=1, cache=tmp_path),
                      StreamedSplit)  # over a budget of ~1 KiB


@pytest.mark.skipif(generated_bytes(N_HUGE, 128) > HOST.bytes, reason="a GPU here so much larger than the host's "
                    "memory that a set too big for it cannot be generated")
def test_a_set_too_big_to_hold_expands_when_it_streams_and_is_refused_when_it_may_not(tmp_path: Path) -> None:
    code, out, root = _expand(tmp_path / "auto", HUGE)
    assert code == 0, out
    assert "stream" not in json.loads((root / "h" / "plan.json").read_text())["jobs"][0]  # the default
    code, out, _ = _expand(tmp_path / "never", HUGE + "  stream: {mode: never}\n")
    assert code == 2 and len(out.strip().splitlines()) == 1, out
    assert re.search(r"base\.stream\.mode \(line 7\) at point \(base\): training needs about [\d,.]+ GiB with its "
                     r"training set resident .* and stream\.mode is never; set stream\.mode: auto", out), out
    code, out, _ = _expand(tmp_path / "budget", HUGE + "  stream: {budget_gb: 1.0e6}\n")
    assert code == 2 and "stream.budget_gb = 1e+06 keeps it resident" in out, out


def test_streaming_a_data_file_is_refused_at_expand_and_auto_holds_it_resident(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    data_layouts.tl_scaling(tmp_path / "d.h5", rng.standard_normal((40, 2, 16, 16)), rng.uniform(0, 1, (40, 3)))
    text = SCRATCH_YAML + "  downstream: {n_train: 16, n_val: 4, n_test: 4, data: {path: d.h5, format: tl-scaling}}\n"
    code, out, _ = _expand(tmp_path, text + "  stream: {mode: always}\n")
    assert code == 2 and re.search(r"base\.stream\.mode \(line 7\) at point \(base\): stream\.mode always streams "
                                   r"generated steady training sets only; data files load resident .*: set "
                                   r"stream\.mode: auto or never$", out.strip()), out
    assert _expand(tmp_path, text)[0] == 0


@pytest.mark.parametrize(("stream", "message"), [
    ("{mode: sometimes}", r"base\.stream\.mode \(line \d+\): invalid value 'sometimes'; choose one of auto, always, "
                          r"never"),
    ("{budget_gb: -1}", r"base\.stream\.budget_gb \(line \d+\): must be >= 0, got -1"),
    ("{budget: 4}", r"base\.stream\.budget \(line \d+\): unknown key `stream\.budget`; did you mean "
                    r"`stream\.budget_gb`\?"),
    ("{mode: always}\n  task: next_step\n  downstream: {system: heat}",
     r"base\.stream\.mode \(line \d+\) at point \(base\): stream\.mode always streams generated steady training "
     r"sets only; trajectory datasets load resident"),
], ids=["unknown-mode", "negative-budget", "misspelt-key", "always-on-trajectories"])
def test_bad_stream_settings_are_refused_at_expand_in_one_line(tmp_path: Path, stream: str, message: str) -> None:
    code, out, _ = _expand(tmp_path, SCRATCH_YAML + f"  stream: {stream}\n")
    assert code == 2 and len(out.strip().splitlines()) == 1, out
    assert re.search(message, out), out


SCRATCH_YAML = "name: t\nbase:\n  init: scratch\n  resolution: 16\n  model: {width: 4, modes: 4}\n"
