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

import dataclasses
import json
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from harness import pde
from harness.errors import HarnessError
from harness.job import Job, TrainConfig
from harness.job.evaluate import record, score
from harness.job.hooks import hold_hook
from harness.job.process import keep_freed_memory
from harness.job.trial import Pruned, TrialRun
from harness.pde.cache import data_cache
from harness.store import State
from harness.store.atomic import write_text_atomic
from harness.store.folders import (
    disk_state,
    read_summary,
    run_dir,
    sweep_dir,
    write_json_atomic,
    write_parquet_atomic,
    write_summary,
)
from harness.store.watch import progress_hook
from harness.tasks.make import make_task
from harness.track.worker import open_trackers
from harness.train.distributed import current
from harness.train.loop import evaluate, load_weights, seed_everything, train
from harness.train.strategies import transferred_modules

EvalHook = Callable[[dict[str, Any]], None]


def pick_device() -> torch.device:
    """The GPU this process was given (CUDA_VISIBLE_DEVICES), else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def data_seed(job: Job) -> int:
    """The seed of a job's data draws: pretraining and downstream data are separate draws even for the same
    system and range (or file)."""
    return 2 * job.config.data_seed + (job.stage != "pretrain")


def _stats_of(job: Job, root: Path) -> dict[str, Any]:
    """Normalisation statistics a pretrained model was trained with (stored beside its checkpoint); refused
    when they were made with another channel layout (the model would read its inputs wrongly)."""
    assert job.depends_on is not None
    path = run_dir(sweep_dir(root, job.sweep), job.depends_on) / "stats.json"
    try:
        stats = json.loads(path.read_text())
    except (OSError, ValueError) as exc:  # the pretraining is then incomplete (harness.store.folders): it reruns
        raise HarnessError(f"{path}: unreadable statistics of pretraining job {job.depends_on} ({exc}); delete "
                           f"{path} and run `harness submit` again: the pretraining reruns from its checkpoint, then "
                           "this job") from None
    if stats.get("layout") != pde.LAYOUT_VERSION:
        raise HarnessError(f"{path} was made with input channel layout {stats.get('layout', 1)}, not "
                           f"{pde.LAYOUT_VERSION}; rerun pretraining job {job.depends_on} (delete its run folder)")
    return stats


def _execute(job: Job, root: Path, folder: Path, device: torch.device,
             on_eval: EvalHook | None) -> dict[str, Any]:
    """Run the job's stage; returns the metric columns of its summary."""
    cfg, stage, part = job.config, job.stage, job.part
    task = make_task(cfg, job.stream)  # not in the config: on the job (expand)
    dseed, cache = data_seed(job), data_cache(root)

    def tensors(split: str, n: int, stats: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        return task.tensors(task.load(part, split, n, seed=dseed, cache=cache), stats)

    seed = cfg.pretrain.seed if stage == "pretrain" and cfg.pretrain else cfg.seed or 0  # zero-shot: none, 0
    strategy = task.strategy(cfg.pretrain) if cfg.pretrain is not None else None  # scratch jobs have none
    tcfg = job.train or TrainConfig()  # a zero-shot job trains nothing: its objective's loss is the default
    objective = strategy if stage == "pretrain" else task.objective(tcfg.loss)
    seed_everything(seed)  # before the model: its initial weights are drawn from the seed
    model = task.model(objective, job.part_name, part, cfg.model)  # its family and sizes (harness.models)
    metrics: dict[str, Any] = {"n_params": model.num_params(), "transferred": ""}
    if job.depends_on:
        assert strategy is not None and cfg.pretrain is not None  # a job that depends on one has its pretraining
        pretrained = run_dir(sweep_dir(root, job.sweep), job.depends_on) / "ckpt" / "best.pt"
        refit = task.refits(cfg.pretrain, part)  # data of other channels re-initialise what differs
        loaded = load_weights(model, pretrained, exclude_prefixes=strategy.dropped, refit=refit)
        metrics["transferred"] = transferred_modules(loaded)
        stats = _stats_of(job, root)
    else:
        stats = None
    if stage == "zeroshot":
        best_val = evaluate(model, *tensors("val", part.n_val, stats), device=device, objective=objective)
        metrics.update(status="ok", best_val_rel_l2=best_val, best_step=0)
    else:
        assert part.n_train is not None  # a training job's part has its training-set size
        train_data = task.load(part, "train", part.n_train, seed=dseed, cache=cache)
        stats = task.stats(train_data, stats)
        if stage == "pretrain" and current().is_main:
            write_json_atomic(folder / "stats.json", {**stats, "layout": pde.LAYOUT_VERSION})
        result = train(model, task.tensors(train_data, stats), tensors("val", part.n_val, stats), tcfg, seed=seed,
                       device=device, workdir=folder / "ckpt", on_eval=on_eval, objective=objective)
        if current().is_main:
            write_parquet_atomic(folder / "epochs.parquet", result.rows)
        metrics.update(status=result.status, error=result.error, best_val_rel_l2=result.best_val_rel_l2,
                       best_step=result.best_step, steps_run=result.steps_run, epochs_run=result.epochs_run,
                       budget_limited=result.budget_limited)
        if result.status != "ok":
            return metrics  # train() leaves the best weights in the model when it is ok
    metrics.update(task.test_metrics(model, tensors("test", part.n_test, stats), objective, device))
    if job.evals:  # a sweep's `eval:` sources (harness.sweep.evals); every rank scores its share, as in the test
        rows = [score(job, model, stats, dict(source), seed=dseed, cache=cache, device=device) for source in job.evals]
        if current().is_main:
            record(folder, rows)
    return metrics


def _chain(*hooks: EvalHook | None) -> EvalHook:
    """One evaluation hook calling each given hook in turn."""
    def hook(row: dict[str, Any]) -> None:
        for h in hooks:
            if h is not None:
                h(row)
    return hook


def run_job(job: Job, root: Path | str, *, on_eval: EvalHook | None = None) -> dict[str, Any]:
    """Run one job to completion and write its results; returns its summary row.

    A done job (its summary says ok or pruned, with the files an ok result needs) is not run again: its summary
    is returned as it is. In a data-parallel job (``harness.train.distributed``) every rank calls this; rank 0
    writes, tracks and reports, the other ranks train alongside it and return their metrics (an error there ends
    the rank, and so the job).
    """
    root = Path(root)
    sweep_path = sweep_dir(root, job.sweep)
    folder = run_dir(sweep_path, job.id)
    if disk_state(sweep_path, job).is_done():  # an ok summary with all its files (``store.incomplete``)
        return read_summary(folder)
    keep_freed_memory()
    device = pick_device()
    if not current().is_main:
        return _execute(job, root, folder, device, hold_hook(job.id))
    folder.mkdir(parents=True, exist_ok=True)
    write_json_atomic(folder / "config.json", job.to_dict())
    start = time.time()
    trial = None
    trackers = open_trackers(job, sweep_path, folder)  # none unless the sweep names some (`track:`)
    on_eval = _chain(on_eval, progress_hook(job, folder), hold_hook(job.id), trackers.log)
    try:
        if job.config.tune is not None:  # a trial job: its optuna trial picks the train settings
            trial = TrialRun(job, sweep_path)
            job = dataclasses.replace(job, config=dataclasses.replace(job.config, train=trial.apply(job.config.train)))
            on_eval = _chain(on_eval, trial.report)
        metrics = _execute(job, root, folder, device, on_eval)
        (folder / "error.txt").unlink(missing_ok=True)
    except Pruned as exc:
        metrics = {"status": State.PRUNED, "error": str(exc)}
    except Exception as exc:  # recorded, never raised: one bad job must not stop a sweep
        write_text_atomic(folder / "error.txt", traceback.format_exc())
        metrics = {"status": State.FAILED, "error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
    if trial is not None:
        metrics.update(trial.finish(metrics))
    summary = write_summary(sweep_path, job, metrics, wall_s=time.time() - start, device=str(device))
    trackers.finish(summary)
    return summary
