"""Helpers shared by the tests: the real `harness` command, tiny sweep files, results tables, worker processes,
a training run that learns and resumes bit for bit."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
import yaml
from click.testing import CliRunner

from harness import api
from harness.cli import main
from harness.job import Job
from harness.job.run import run_job
from harness.store.folders import Plan, run_dir
from harness.train.checkpoint import load

ROOT = Path(__file__).resolve().parent.parent
SWEEPS = ROOT / "sweeps"
HARNESS_TIMEOUT_S = 900  # one `harness` command of a test: tiny sweeps, seconds to a few minutes on a loaded machine
# A tiny sweep of every stage: 16x16 Poisson, width 6, a few epochs (seconds per job on one core).
TINY: dict[str, Any] = {
    "name": "tiny",
    "base": {
        "resolution": 16,
        "model": {"width": 6, "modes": 4},
        "pretrain": {"n_train": 48, "n_val": 16, "n_test": 16, "train": {"epochs": 4, "lr": 3.0e-3, "batch_size": 16}},
        "downstream": {"n_val": 16, "n_test": 16},
        "train": {"epochs": 3, "lr": 1.0e-3, "batch_size": 8},
    },
    "matrix": {"downstream.n_train": [8, 16], "init": ["pretrained", "scratch", "zeroshot"]},
}

# A pretraining read from a data file, fine-tuned and evaluated zero-shot; scratch needs no pretraining.
READY: dict[str, Any] = {
    "name": "ready",
    "base": {
        "resolution": 16,
        "model": {"width": 4, "modes": 4},
        "pretrain": {"n_train": 16, "n_val": 4, "n_test": 4, "train": {"steps": 2, "batch_size": 8},
                     "data": {"path": "pretrain.h5", "format": "arrays"}},
        "downstream": {"n_train": 8, "n_val": 8, "n_test": 8},
        "train": {"steps": 2, "batch_size": 8},
    },
    "matrix": {"init": ["pretrained", "zeroshot", "scratch"]},
}


def harness(root: Path, *args: str, check: bool = True, env: dict[str, str] | None = None,
            timeout: float = HARNESS_TIMEOUT_S) -> subprocess.CompletedProcess:
    """Run the real `harness` command in a subprocess (real worker processes); ``env`` adds variables. A command
    still running after ``timeout`` seconds is killed and fails the test (a hang, not a slow machine)."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "harness.cli", *args, "--root", str(root)], capture_output=True,
                          text=True, env=full_env, timeout=timeout)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def cli(root: Path, *args: str) -> str:
    """Run a `harness` command that runs no job (expand, status, tune-status...) in this process; its output."""
    result = CliRunner().invoke(main, [*args, "--root", str(root)])
    assert result.exit_code == 0, result.output
    return result.output


def start_harness(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start the real `harness` command without waiting; stdout and stderr merged, as text."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "harness.cli", *args, "--root", str(root)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=full_env)


def wait_for_line(proc: subprocess.Popen, text: str) -> list[str]:
    """Read ``proc``'s output until a line containing ``text``; returns the lines read (fails at its end)."""
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"{text!r} never printed; output:\n{''.join(lines)}")


def assert_refused_at_expand(sweep: Path, message: str) -> None:
    """`harness expand SWEEP` exits 2 with one line, ``error: SWEEP: ...`` matching ``message`` (a regex), and
    writes nothing under the results root."""
    root = sweep.parent / "results"
    result = CliRunner().invoke(main, ["expand", str(sweep), "--root", str(root)])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert lines[0].startswith(f"error: {sweep}: ") and re.search(message, lines[0]), lines[0]
    assert not root.exists()


def write_sweep(folder: Path, sweep: dict[str, Any], **base: dict[str, Any]) -> Path:
    """Write ``sweep`` (with ``base`` sections merged into its `base:`) as folder/<name>.yaml; returns the path."""
    spec = yaml.safe_load(yaml.safe_dump(sweep))
    for key, value in base.items():
        spec["base"][key] = {**spec["base"].get(key, {}), **value}
    path = Path(folder) / f"{spec['name']}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def results(root: Path, name: str = "tiny") -> pd.DataFrame:
    """Every job's summary row (results.parquet, written by a local submit), sorted by id."""
    table = pd.read_parquet(root / name / "results.parquet")
    return table.sort_values("id").reset_index(drop=True)


def workers(pid: int) -> list[int]:
    """The worker processes of a `harness submit` (its spawned children, not multiprocessing's helpers)."""
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split() if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text()]


def assert_learns_and_resumes(fit: Callable[..., tuple[torch.nn.Module, Any]], tmp_path: Path, kill_at: int) -> None:
    """``fit(workdir, on_eval=None) -> (model, TrainResult)`` lowers its validation error, and a run killed after
    its evaluation at step ``kill_at`` resumes to the same evaluations and weights, bit for bit."""
    model, full = fit(tmp_path / "full")
    rows = [r["val_rel_l2"] for r in full.rows]
    assert full.status == "ok" and min(rows[1:]) < rows[0]

    def kill(row: dict[str, Any]) -> None:
        if row["step"] == kill_at:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(tmp_path / "killed", kill)
    resumed_model, resumed = fit(tmp_path / "killed")
    assert [r["val_rel_l2"] for r in resumed.rows] == rows
    for (k, v), w in zip(model.state_dict().items(), resumed_model.state_dict().values(), strict=True):
        assert torch.equal(v, w), k


def assert_finetuning_keeps_exactly_the_transferred(jobs: list[Job], root: Path,
                                                    expected: dict[str, str]) -> None:
    """Run ``jobs`` (pretrainings and their fine-tunings, expanded into ``root``) and check each fine-tuning's
    ``transferred`` is ``expected[strategy]`` and that exactly the modules it names hold the pretrained weights at
    the end (the jobs fine-tune at a vanishing learning rate, so kept weights do not move)."""
    rows = {job.id: run_job(job, root) for job in jobs}
    by_id = {job.id: job for job in jobs}
    for jid, row in rows.items():
        assert row["status"] == "ok", row
        if row["stage"] == "pretrain":
            continue
        strategy = row["pretrain.strategy"]
        assert row["transferred"] == expected[strategy], row
        sweep = root / by_id[jid].sweep
        pretrained = load(run_dir(sweep, by_id[jid].depends_on) / "ckpt" / "best.pt")["model"]
        finetuned = load(run_dir(sweep, jid) / "ckpt" / "best.pt")["model"]
        for name, value in finetuned.items():
            kept = name.split(".")[0] in row["transferred"].split(",")
            same = name in pretrained and pretrained[name].shape == value.shape and torch.allclose(
                pretrained[name], value, rtol=0, atol=1e-12)
            assert same == kept, (strategy, name)


def failing_pretraining(tmp_path: Path) -> Plan:
    """The plan of ``READY`` with its pretraining's data file gone after expand, so that the pretraining fails."""
    data = api.dataset("poisson", 40, tmp_path / "pretrain.h5", resolution=16)
    assert "40 poisson samples" in data
    sweep = tmp_path / "ready.yaml"
    sweep.write_text(yaml.safe_dump(READY))
    plan = api.expand(sweep, tmp_path / "results")
    (tmp_path / "pretrain.h5").unlink()
    return plan
