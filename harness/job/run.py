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

import contextlib
import dataclasses
import json
import sys
import time
import traceback
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import torch

from harness import pde
from harness.errors import HarnessError, error_line
from harness.job import Job, TrainConfig
from harness.job.evaluate import record, score_each
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
from harness.train.fused import train_group
from harness.train.loop import TrainResult, evaluate, load_weights, seed_everything, start, train
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
             on_eval: EvalHook | None) -> Generator[dict[str, Any], TrainResult, dict[str, Any]]:
    """Run the job's stage; returns the metric columns of its summary. A generator: a training job yields the
    arguments of its ``train`` and is sent the result (``_alone``, or fused with others by ``run_group``)."""
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
        result = yield dict(model=model, train_xy=task.tensors(train_data, stats),
                            val_xy=tensors("val", part.n_val, stats), cfg=tcfg, seed=seed, device=device,
                            workdir=folder / "ckpt", on_eval=on_eval, objective=objective)
        if current().is_main:
            write_parquet_atomic(folder / "epochs.parquet", result.rows)
        metrics.update(status=result.status, error=result.error, best_val_rel_l2=result.best_val_rel_l2,
                       best_step=result.best_step, steps_run=result.steps_run, epochs_run=result.epochs_run,
                       budget_limited=result.budget_limited)
        if result.status != "ok":
            return metrics  # train() leaves the best weights in the model when it is ok
    metrics.update(task.test_metrics(model, tensors("test", part.n_test, stats), objective, device))
    if job.evals:  # a sweep's `eval:` sources (harness.sweep.evals); every rank scores its share, as in the test;
        # a source that fails gets a row with its error, and the job stays ok with its test (harness.job.evaluate)
        rows = score_each(job, model, stats, [dict(s) for s in job.evals], seed=dseed, cache=cache, device=device)
        if current().is_main:
            record(folder, rows)
    return metrics


def _alone(execution: Generator[dict[str, Any], TrainResult, dict[str, Any]]) -> dict[str, Any]:
    """Drive an ``_execute``: its training, if any, by ``train``; returns its metrics."""
    try:
        request = next(execution)
        execution.send(train(**request))
    except StopIteration as end:
        return end.value
    raise AssertionError("a job trains once")


def _chain(*hooks: EvalHook | None) -> EvalHook:
    """One evaluation hook calling each given hook in turn."""
    def hook(row: dict[str, Any]) -> None:
        for h in hooks:
            if h is not None:
                h(row)
    return hook


def _train_fused(attempts: list[_Attempt]) -> None:
    """Train the attempts' requests as one group (those whose set-up or resume fails leave it first). Each is
    charged its share of the group's time, by the steps it took in it; when the group raises, each trains alone
    from its own ``last.pt`` (as a resubmission would) and fails, if it does, with its own error."""
    runs = []
    for a in attempts:
        with a.timed(), a.recording():
            runs.append((a, start(**a.request)))
    before = [run.state.step for _, run in runs]
    begin, failure = time.perf_counter(), None
    try:
        results = train_group([run for _, run in runs])
    except Exception as exc:  # e.g. out of memory: K models' activations at once, where one's fit
        failure, results = error_line(exc), []
    elapsed, steps = time.perf_counter() - begin, [run.state.step - b for (_, run), b in zip(runs, before, strict=True)]
    for (a, _), took in zip(runs, steps, strict=True):
        a.seconds += elapsed * (took / sum(steps) if sum(steps) else 1 / len(runs))
        a.group_size = len(runs)
    if failure is not None:
        ids = ", ".join(a.job.id for a, _ in runs)
        print(f"harness: warning: the fused training of {len(runs)} jobs ({ids}) failed ({failure}); training "
              "each alone from its checkpoint", file=sys.stderr, flush=True)
        runs.clear()  # their models and optimisers: the fallback builds each job's afresh
        for a in attempts:
            a.alone_again()
        return
    for (a, _), result in zip(runs, results, strict=True):
        with a.timed():
            a.advance(result)


class _Attempt:
    """One job's run on rank 0 between its folder's ``config.json`` and its summary: trackers, a tuning trial, and
    its ``_execute``, which ``advance`` drives to its training (``request``) and then to its end."""

    def __init__(self, job: Job, root: Path, on_eval: EvalHook | None) -> None:
        begin = time.perf_counter()
        self.root, self.sweep_path = root, sweep_dir(root, job.sweep)
        self.folder, self.device = run_dir(self.sweep_path, job.id), pick_device()
        self.folder.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.folder / "config.json", job.to_dict())
        self.trial: TrialRun | None = None
        self.seconds, self.group_size = 0.0, 1  # its time on the device (wall_s); jobs trained with it, itself included
        self.trackers = open_trackers(job, self.sweep_path, self.folder)  # none unless the sweep names some
        on_eval = _chain(on_eval, progress_hook(job, self.folder), hold_hook(job.id), self.trackers.log)
        self.request: dict[str, Any] | None = None
        self.metrics: dict[str, Any] = {}
        self.execution: Generator[dict[str, Any], TrainResult, dict[str, Any]] | None = None
        self.job = job
        with self.recording():
            if job.config.tune is not None:  # a trial job: its optuna trial picks the train settings
                self.trial = TrialRun(job, self.sweep_path)
                tuned = self.trial.apply(job.config.train)
                self.job = dataclasses.replace(job, config=dataclasses.replace(job.config, train=tuned))
                on_eval = _chain(on_eval, self.trial.report)
            self.execution = _execute(self.job, root, self.folder, self.device, on_eval)
        self.on_eval = on_eval
        self.advance()
        self.seconds = time.perf_counter() - begin

    @contextlib.contextmanager
    def timed(self) -> Iterator[None]:
        """Charge the time spent inside to the job's ``wall_s``."""
        begin = time.perf_counter()
        try:
            yield
        finally:
            self.seconds += time.perf_counter() - begin

    @contextlib.contextmanager
    def recording(self) -> Iterator[None]:
        """Record what the job raises in its metrics (and ``error.txt``): one bad job must not stop a sweep."""
        try:
            yield
        except Pruned as exc:
            self.metrics, self.execution = {"status": State.PRUNED, "error": str(exc)}, None
        except Exception as exc:
            write_text_atomic(self.folder / "error.txt", traceback.format_exc())
            self.metrics = {"status": State.FAILED, "error": error_line(exc)}
            self.execution = None

    def advance(self, result: TrainResult | None = None) -> None:
        """Run the job on to its training (its arguments in ``request``) or, sent its training's result, to its end."""
        self.request = None
        if self.execution is None:
            return
        with self.recording():
            try:
                self.request = self.execution.send(result) if result is not None else next(self.execution)
            except StopIteration as end:
                self.metrics, self.execution = end.value, None
                (self.folder / "error.txt").unlink(missing_ok=True)

    def alone_again(self) -> None:
        """Train the job alone after its fused group failed: its data and model afresh, its training resumed from
        its ``last.pt`` (as a resubmission would), then on to its end."""
        if self.execution is None:
            return
        with self.timed():
            self.execution.close()
            self.request = None
            with self.recording():
                self.execution = _execute(self.job, self.root, self.folder, self.device, self.on_eval)
            self.advance()
            if self.request is not None:
                with self.recording():
                    self.advance(train(**self.request))

    def summary(self) -> dict[str, Any]:
        """Write the job's summary (the trial's outcome first) and close its trackers; returns the summary."""
        if self.trial is not None:
            with self.timed():
                self.metrics.update(self.trial.finish(self.metrics))
        fused = {"group_size": self.group_size} if self.group_size > 1 else {}  # wall_s is its share of the group's
        summary = write_summary(self.sweep_path, self.job, {**self.metrics, **fused}, wall_s=self.seconds,
                                device=str(self.device))
        self.trackers.finish(summary)
        return summary


def run_job(job: Job, root: Path | str, *, on_eval: EvalHook | None = None) -> dict[str, Any]:
    """Run one job to completion and write its results; returns its summary row.

    A done job (its summary says ok or pruned, with the files an ok result needs) is not run again: its summary
    is returned as it is. In a data-parallel job (``harness.train.distributed``) every rank calls this; rank 0
    writes, tracks and reports, the other ranks train alongside it and return their metrics (an error there ends
    the rank, and so the job).
    """
    if not current().is_main:
        root = Path(root)
        folder = run_dir(sweep_dir(root, job.sweep), job.id)
        if disk_state(sweep_dir(root, job.sweep), job).is_done():
            return read_summary(folder)
        keep_freed_memory()
        return _alone(_execute(job, root, folder, pick_device(), hold_hook(job.id)))
    return run_group([job], root, hooks=lambda _: on_eval)[0]


def run_group(jobs: list[Job], root: Path | str, *,
              hooks: Callable[[Job], EvalHook | None] | None = None) -> list[dict[str, Any]]:
    """Run jobs of one model shape (``harness.job.fusable``) as one fused training (``harness.train.fused``; one job
    trains alone, by ``train``) and write each one's results as ``run_job`` would; returns their summary rows, in
    order. Each job's data, model,
    evaluations, checkpoints and tests are its own; a job that fails before its training leaves the group, one
    whose training ends early leaves it then; when the fused training itself raises, each job in it trains on alone
    from its checkpoint. Each job's ``wall_s`` is its share of the time (the group's split by the steps each took in
    it), so that a sweep's add up to its device time; a fused job's summary has ``group_size``.
    ``hooks``: each job's evaluation hook, as ``run_job``'s ``on_eval``."""
    root = Path(root)
    summaries: dict[int, dict[str, Any]] = {}
    attempts: dict[int, _Attempt] = {}
    for i, job in enumerate(jobs):
        if disk_state(sweep_dir(root, job.sweep), job).is_done():
            summaries[i] = read_summary(run_dir(sweep_dir(root, job.sweep), job.id))
        else:
            keep_freed_memory()
            attempts[i] = _Attempt(job, root, hooks(job) if hooks is not None else None)
    training = [a for a in attempts.values() if a.request is not None]
    if len(training) == 1:
        (one,) = training
        with one.timed(), one.recording():
            one.advance(train(**one.request))
    elif training:
        _train_fused(training)
    summaries.update({i: a.summary() for i, a in attempts.items()})
    return [summaries[i] for i in range(len(jobs))]
