"""`run_job(job, root)`: the single entry point a backend calls. Data, model, training, results.

The job's folder is its state: `config.json` first, `ckpt/last.pt` as training goes (a requeued or killed job
resumes from it), then `epochs.parquet` (one row per evaluation) and last `summary.parquet`, all written
atomically, so a summary exists only for a finished job. A job that raises is recorded as failed with its
traceback in `error.txt`; it never takes the caller down.

The job's task (`harness.tasks`: steady, fixed_future, next_step) says how its data become the tensors the
training loop batches, what the model learns from them (an `Objective`) and how it is tested. A pretraining job
trains its `pretrain.strategy`: supervised (the task itself), or a pretext task with its own head, whose
metric then fills `best_val_rel_l2` and `test_rel_l2` of the pretraining row. Fine-tuning loads what the
strategy transfers (`transferred` names the modules: all for supervised, the trunk without the pretext head
otherwise) and always learns the task.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

import harness
from harness import pde
from harness.errors import HarnessError
from harness.process import keep_freed_memory
from harness.store import read_summary, run_dir, sweep_dir, write_json_atomic, write_parquet_atomic
from harness.sweep.expand import flat_row
from harness.tasks.make import make_task
from harness.train.loop import TrainConfig, evaluate, load_weights, seed_everything, train
from harness.tune import Pruned, TrialRun

EvalHook = Callable[[dict[str, Any]], None]


@functools.cache
def git_revision() -> str:
    """The harness source's git revision (HARNESS_GIT_REV when a backend pinned it), or "unknown"."""
    if os.environ.get("HARNESS_GIT_REV"):
        return os.environ["HARNESS_GIT_REV"]
    here = Path(harness.__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "--short=12", "HEAD"],
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def pick_device() -> torch.device:
    """The GPU this process was given (CUDA_VISIBLE_DEVICES), else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def data_cache(root: Path) -> Path:
    """Where PDE datasets are cached: HARNESS_DATA_CACHE, else <root>/.cache/data."""
    return Path(os.environ.get("HARNESS_DATA_CACHE") or Path(root) / ".cache" / "data")


def _stats_of(job: dict[str, Any], root: Path) -> dict[str, Any]:
    """Normalisation statistics a pretrained model was trained with (stored beside its checkpoint); refused
    when they were made with another channel layout (the model would read its inputs wrongly)."""
    path = run_dir(sweep_dir(root, job["sweep"]), job["depends_on"]) / "stats.json"
    stats = json.loads(path.read_text())
    if stats.get("layout") != pde.LAYOUT_VERSION:
        raise HarnessError(f"{path} was made with input channel layout {stats.get('layout', 1)}, not "
                           f"{pde.LAYOUT_VERSION}; rerun pretraining job {job['depends_on']} (delete its run folder)")
    return stats


def _execute(job: dict[str, Any], root: Path, folder: Path, device: torch.device,
             on_eval: EvalHook | None) -> dict[str, Any]:
    """Run the job's stage; returns the metric columns of its summary."""
    cfg, stage = job["config"], job["stage"]
    task = make_task(cfg)
    # Pretraining and downstream data are separate draws even for the same system and range.
    dseed, cache = 2 * cfg["data_seed"] + (stage != "pretrain"), data_cache(root)
    part = cfg["pretrain"] if stage == "pretrain" else cfg["downstream"]

    def tensors(split: str, n: int, stats: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        return task.tensors(task.load(part, split, n, seed=dseed, cache=cache), stats)

    seed = cfg["pretrain"]["seed"] if stage == "pretrain" else cfg.get("seed", 0)
    strategy = task.strategy(cfg["pretrain"]) if "pretrain" in cfg else None  # scratch jobs have none
    tcfg = TrainConfig.from_dict(cfg["pretrain"]["train"] if stage == "pretrain" else cfg.get("train", {}))
    objective = strategy if stage == "pretrain" else task.objective(tcfg.loss)
    seed_everything(seed)  # before the model: its initial weights are drawn from the seed
    model = objective.build_model(cfg["model"]["width"], cfg["model"]["modes"])
    metrics: dict[str, Any] = {"n_params": model.num_params(), "transferred": ""}
    if job["depends_on"]:
        pretrained = run_dir(sweep_dir(root, job["sweep"]), job["depends_on"]) / "ckpt" / "best.pt"
        loaded = load_weights(model, pretrained, exclude_prefixes=strategy.dropped)
        metrics["transferred"] = ",".join(sorted({n.split(".")[0] for n in loaded}))
        stats = _stats_of(job, root)
    else:
        stats = None
    if stage == "zeroshot":
        best_val = evaluate(model, *tensors("val", part["n_val"], stats), device=device, objective=objective)
        metrics.update(status="ok", best_val_rel_l2=best_val, best_step=0)
    else:
        train_data = task.load(part, "train", part["n_train"], seed=dseed, cache=cache)
        stats = stats or task.stats(train_data)
        if stage == "pretrain":
            write_json_atomic(folder / "stats.json", {**stats, "layout": pde.LAYOUT_VERSION})
        result = train(model, task.tensors(train_data, stats), tensors("val", part["n_val"], stats), tcfg, seed=seed,
                       device=device, workdir=folder / "ckpt", on_eval=on_eval, objective=objective)
        write_parquet_atomic(folder / "epochs.parquet", result.rows)
        metrics.update(status=result.status, error=result.error, best_val_rel_l2=result.best_val_rel_l2,
                       best_step=result.best_step, steps_run=result.steps_run, epochs_run=result.epochs_run,
                       still_improving=result.still_improving)
        if result.status != "ok":
            return metrics  # train() leaves the best weights in the model when it is ok
    metrics.update(task.test_metrics(model, tensors("test", part["n_test"], stats), objective, device))
    return metrics


def _chain(*hooks: EvalHook | None) -> EvalHook:
    """One evaluation hook calling each given hook in turn."""
    def hook(row: dict[str, Any]) -> None:
        for h in hooks:
            if h is not None:
                h(row)
    return hook


def run_job(job: dict[str, Any], root: Path | str, *, on_eval: EvalHook | None = None) -> dict[str, Any]:
    """Run one job to completion and write its results; returns its summary row.

    A finished job (summary present) is not run again: its summary is returned as it is.
    """
    root = Path(root)
    folder = run_dir(sweep_dir(root, job["sweep"]), job["id"])
    done = read_summary(folder)
    if done is not None and done["status"] == "ok":
        return done
    folder.mkdir(parents=True, exist_ok=True)
    write_json_atomic(folder / "config.json", job)
    keep_freed_memory()
    device = pick_device()
    start = time.time()
    trial = None
    try:
        if "tune" in job["config"]:  # a trial job: its optuna trial picks the train settings
            trial = TrialRun(job, folder.parent.parent)
            job = {**job, "config": {**job["config"], "train": trial.apply(job["config"]["train"])}}
            on_eval = _chain(on_eval, trial.report)
        metrics = _execute(job, root, folder, device, on_eval)
        (folder / "error.txt").unlink(missing_ok=True)
    except Pruned as exc:
        metrics = {"status": "pruned", "error": str(exc)}
    except Exception as exc:  # recorded, never raised: one bad job must not stop a sweep
        (folder / "error.txt").write_text(traceback.format_exc())
        metrics = {"status": "failed", "error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
    if trial is not None:
        metrics.update(trial.finish(metrics))
    return write_summary(job, root, metrics, wall_s=time.time() - start, device=str(device))


def write_summary(job: dict[str, Any], root: Path, metrics: dict[str, Any], *, wall_s: float = 0.0,
                  device: str = "") -> dict[str, Any]:
    """Write a job's one-row summary.parquet (config columns + metrics + provenance); returns the row."""
    row: dict[str, Any] = {**flat_row(job), "error": "", "test_rel_l2": float("nan"),
                           "best_val_rel_l2": float("nan"), "best_step": -1, "steps_run": 0, "epochs_run": 0.0,
                           "still_improving": False, "n_params": 0,
                           "transferred": "", **metrics, "wall_s": wall_s, "device": device,
                           "torch_version": torch.__version__, "harness_version": harness.__version__,
                           "git_rev": git_revision()}
    write_parquet_atomic(run_dir(sweep_dir(root, job["sweep"]), job["id"]) / "summary.parquet", [row])
    return row
