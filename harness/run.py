"""`run_job(job, root)`: the single entry point a backend calls. Data, model, training, results.

The job's folder is its state: `config.json` first, `ckpt/last.pt` as training goes (a requeued or killed job
resumes from it), then `epochs.parquet` (one row per evaluation) and last `summary.parquet`, all written
atomically, so a summary exists only for a finished job. A job that raises is recorded as failed with its
traceback in `error.txt`; it never takes the caller down.

A pretraining job trains its `pretrain.strategy` (`harness.train.strategies`): supervised, or a pretext task
with its own head, whose metric then fills `best_val_rel_l2` and `test_rel_l2` of the pretraining row.
Fine-tuning loads what the strategy transfers (`transferred` names the modules: all for supervised, the
trunk without the pretext head otherwise) and always learns the solution.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from harness import pde
from harness.data import Samples, load, samples_of
from harness.data.sweep import has_data, model_channels
from harness.data.tensors import pick_stats, to_tensors
from harness.errors import HarnessError
from harness.files import write_text_atomic
from harness.models.fno import FNO
from harness.pde.cache import split_path
from harness.process import keep_freed_memory
from harness.states import State
from harness.store import read_summary, run_dir, sweep_dir, write_json_atomic, write_parquet_atomic, write_summary
from harness.track import open_trackers
from harness.train.distributed import current
from harness.train.loop import Objective, TrainConfig, evaluate, load_weights, seed_everything, train
from harness.train.strategies import make_strategy, transferred_modules
from harness.train.stream import StreamedSplit, over_budget
from harness.tune import Pruned, TrialRun
from harness.watch import progress_hook

EvalHook = Callable[[dict[str, Any]], None]
# Test hook, inert unless set: HARNESS_HOLD_AT_STEP=k (every job) or =JOB_ID:k (that job only) makes a job wait
# after its evaluation at optimiser step k (and the checkpoint written before it, when one is due), to be killed
# or requeued: a kill-and-resume test needs no long run to find its window.
HOLD_ENV = "HARNESS_HOLD_AT_STEP"


def pick_device() -> torch.device:
    """The GPU this process was given (CUDA_VISIBLE_DEVICES), else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def data_cache(root: Path) -> Path:
    """Where PDE datasets are cached: HARNESS_DATA_CACHE, else <root>/.cache/data."""
    return Path(os.environ.get("HARNESS_DATA_CACHE") or Path(root) / ".cache" / "data")


def data_seed(config: dict[str, Any], stage: str) -> int:
    """The seed of a job's data draws: pretraining and downstream data are separate draws even for the same
    system and range (or file)."""
    return 2 * config["data_seed"] + (stage != "pretrain")


def _generated(part: dict[str, Any], resolution: int, seed: int, cache: Path) -> dict[str, Any]:
    """The keyword arguments of ``pde.load_split`` for a part's generated data."""
    shift = part["shift"]
    kwargs = {"coef_range": tuple(shift)} if isinstance(shift, list) else {"shift": shift}
    return {**kwargs, "resolution": resolution, "seed": seed, "cache_dir": cache}


def _split(part: dict[str, Any], split: str, n: int, resolution: int, seed: int, cache: Path) -> Samples:
    """One split of a part's data: drawn from its files (``data``), else generated (or from the cache)."""
    if has_data(part):
        return load(part["data"], split, n, seed, cache_dir=str(cache))
    return samples_of(pde.load_split(part["system"], split, n, **_generated(part, resolution, seed, cache)))


def _train_split(part: dict[str, Any], resolution: int, seed: int, cache: Path, memory_gb: float,
                 device: torch.device) -> Samples | StreamedSplit:
    """The training split, resident; or, for generated data whose tensors exceed the job's memory budget, read
    batch by batch from its cache file (``harness.train.stream``)."""
    if has_data(part):
        return _split(part, "train", part["n_train"], resolution, seed, cache)
    path = split_path(part["system"], "train", part["n_train"], **_generated(part, resolution, seed, cache))
    if not path.exists():
        _split(part, "train", part["n_train"], resolution, seed, cache)  # generated and cached
    return over_budget(path, memory_gb, device) or _split(part, "train", part["n_train"], resolution, seed, cache)


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
    res, dseed, cache = cfg["resolution"], data_seed(cfg, stage), data_cache(root)
    part_name = "pretrain" if stage == "pretrain" else "downstream"
    part = cfg[part_name]
    seed = cfg["pretrain"]["seed"] if stage == "pretrain" else cfg.get("seed", 0)
    strategy = make_strategy(cfg["pretrain"]) if "pretrain" in cfg else None  # scratch jobs have none
    tcfg = TrainConfig.from_dict(cfg["pretrain"]["train"] if stage == "pretrain" else cfg.get("train", {}))
    objective = strategy if stage == "pretrain" else Objective(tcfg.loss)
    seed_everything(seed)  # before the model: its initial weights are drawn from the seed
    width, modes = cfg["model"]["width"], cfg["model"]["modes"]
    if stage == "pretrain" and not has_data(part):
        model = strategy.build_model(width, modes)
    else:  # the channels the data has (checked at expand to fit the pretrained model where one is loaded)
        in_channels, out_channels = model_channels(part_name, part)
        model = FNO(width=width, modes=modes, in_channels=in_channels, out_channels=out_channels)
    metrics: dict[str, Any] = {"n_params": model.num_params(), "transferred": ""}
    if job["depends_on"]:
        pretrained = run_dir(sweep_dir(root, job["sweep"]), job["depends_on"]) / "ckpt" / "best.pt"
        refit = has_data(part) or has_data(cfg["pretrain"])  # data of other channels re-initialise what differs
        loaded = load_weights(model, pretrained, exclude_prefixes=strategy.dropped, refit=refit)
        metrics["transferred"] = transferred_modules(loaded)
        stats = _stats_of(job, root)
    else:
        stats = None
    if stage == "zeroshot":
        val = to_tensors(_split(part, "val", part["n_val"], res, dseed, cache), stats)
        best_val = evaluate(model, *val, device=device)
        metrics.update(status="ok", best_val_rel_l2=best_val, best_step=0)
    else:
        memory_gb = job.get("resources", {}).get("memory_gb", 0.0)
        train_data = _train_split(part, res, dseed, cache, memory_gb, device)
        streamed = isinstance(train_data, StreamedSplit)  # generated data, whose statistics fit
        stats = (stats or train_data.stats) if streamed else pick_stats(stats, train_data)
        if stage == "pretrain" and current().is_main:
            write_json_atomic(folder / "stats.json", {**stats, "layout": pde.LAYOUT_VERSION})
        val = to_tensors(_split(part, "val", part["n_val"], res, dseed, cache), stats)
        train_xy = train_data.tensors(stats) if streamed else to_tensors(train_data, stats)
        result = train(model, train_xy, val, tcfg, seed=seed, device=device,
                       workdir=folder / "ckpt", on_eval=on_eval, objective=objective)
        if current().is_main:
            write_parquet_atomic(folder / "epochs.parquet", result.rows)
        metrics.update(status=result.status, error=result.error, best_val_rel_l2=result.best_val_rel_l2,
                       best_step=result.best_step, steps_run=result.steps_run, epochs_run=result.epochs_run,
                       still_improving=result.still_improving)
        if result.status != "ok":
            return metrics  # train() leaves the best weights in the model when it is ok
    test = to_tensors(_split(part, "test", part["n_test"], res, dseed, cache), stats)
    metrics["test_rel_l2"] = evaluate(model, *test, device=device, objective=objective)
    return metrics


def _chain(*hooks: EvalHook | None) -> EvalHook:
    """One evaluation hook calling each given hook in turn."""
    def hook(row: dict[str, Any]) -> None:
        for h in hooks:
            if h is not None:
                h(row)
    return hook


def _hold_hook(job_id: str) -> EvalHook | None:
    """The ``HOLD_ENV`` hook for this job: waits (until killed, at most an hour) after the evaluation at step k."""
    target, _, k = os.environ.get(HOLD_ENV, "").rpartition(":")
    if not k or target not in ("", job_id):
        return None

    def hold(row: dict[str, Any]) -> None:
        if row["step"] == int(k):
            print(f"harness: {job_id} holding at step {k} ({HOLD_ENV})", file=sys.stderr, flush=True)
            time.sleep(3600)

    return hold


def run_job(job: dict[str, Any], root: Path | str, *, on_eval: EvalHook | None = None) -> dict[str, Any]:
    """Run one job to completion and write its results; returns its summary row.

    A done job (its summary says ok or pruned) is not run again: its summary is returned as it is. In a
    data-parallel job (``harness.train.distributed``) every rank calls this and rank 0 alone writes; the other
    ranks return their metrics.
    """
    root = Path(root)
    sweep_path = sweep_dir(root, job["sweep"])
    folder = run_dir(sweep_path, job["id"])
    done = read_summary(folder)
    if done is not None and State(done["status"]).is_done():
        return done
    main = current().is_main
    folder.mkdir(parents=True, exist_ok=True)
    if main:
        write_json_atomic(folder / "config.json", job)
    keep_freed_memory()
    device = pick_device()
    start = time.time()
    trial = None
    trackers = open_trackers(job, sweep_path, folder)  # none unless the sweep names some (`track:`)
    on_eval = _chain(on_eval, progress_hook(job, folder), _hold_hook(job["id"]), trackers.log)
    try:
        if "tune" in job["config"]:  # a trial job: its optuna trial picks the train settings
            trial = TrialRun(job, sweep_path)
            job = {**job, "config": {**job["config"], "train": trial.apply(job["config"]["train"])}}
            on_eval = _chain(on_eval, trial.report)
        metrics = _execute(job, root, folder, device, on_eval)
        if main:
            (folder / "error.txt").unlink(missing_ok=True)
    except Pruned as exc:
        metrics = {"status": State.PRUNED, "error": str(exc)}
    except Exception as exc:  # recorded, never raised: one bad job must not stop a sweep
        if main:
            write_text_atomic(folder / "error.txt", traceback.format_exc())
        metrics = {"status": State.FAILED, "error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
    if not main:
        return metrics
    if trial is not None:
        metrics.update(trial.finish(metrics))
    summary = write_summary(sweep_path, job, metrics, wall_s=time.time() - start, device=str(device))
    trackers.finish(summary)
    return summary
