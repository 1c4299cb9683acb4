"""Synthetic sweep results drawn from known power laws, written as a real sweep folder (tests, benchmarks).

Downstream error = a * N^-B + C with multiplicative log-normal noise: scratch has the largest a; fine-tuning
divides it by a gain that grows with model size and shrinks with the shift level; other strategies and the
mixed pretraining transfer a little worse; augmentation (``augments``) helps a little. Zero-shot rows have a null
``downstream.n_train``. ``tuned_runs`` turns the finetune and scratch rows into the trials of tuning studies;
``joint_runs`` draws fine-tune and scratch rows from known joint laws err = E + A P^-a + B N^-b with a budget in
epochs (so that their compute grows with N).
Parameter counts and `transferred` are those of the real models; ``write_synthetic_sweep`` writes the plan and
every summary row through the store's own writers, so the files are those a real sweep leaves.

Downstream runs train for a budget of STEPS optimiser steps (``train.steps``) with a fixed ``downstream.n_val``;
the scratch runs at the smallest N are the budget-limited ones (``budget_limited``), as an
undertrained small-N baseline would be.
"""

from __future__ import annotations

import functools
import hashlib
import json
from itertools import product
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from harness.job import Job, Pretrain
from harness.models.fno import FNO
from harness.store.collect import best_trials
from harness.store.folders import save_plan, write_summary
from harness.sweep.dotted import nest
from harness.train.strategies import make_strategy, transferred_modules

A_SCRATCH = 2.0
B_TRUE = 0.5
C_TRUE = 0.01
STRATEGY_PENALTY = {"supervised": 1.0, "derivative": 1.3, "masked": 1.6, "coefficient": 2.0}
AUGMENT_GAIN = {"none": 1.0, "scale": 0.85, "noise": 0.95, "shift": 1.0}  # error factor of an augmentation
TUNE_LRS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)
STEPS, BATCH, N_VAL = 2000, 16, 128  # downstream step budget, batch size and validation samples
PRETRAIN_EPOCHS, PRETRAIN_STEPS = 20, 1280  # 20 epochs of 32,768 samples at batch 512
_CONFIG_TOP = ("resolution", "data_seed", "seed", "init")
EPOCHS = 20  # the joint-law runs' budget in epochs (``joint_runs``): their compute grows with N
TRIAL_COLUMNS = ("tune.optuna_trial", "tune.params")  # a trial's summary columns besides its config's tune.*


@functools.cache
def _model_facts(stage: str, strategy: str | None, width: int, modes: int) -> tuple[int, str]:
    """(parameter count, `transferred`) of a real job of this stage: its model as the job builds it, and the
    modules fine-tuning (or zero-shot evaluation) loads from a pretraining of ``strategy``."""
    pretext = make_strategy(Pretrain(strategy=strategy or "supervised"))
    grid = 2 * modes  # any grid the modes fit: an FNO's count does not depend on it
    model = pretext.build_model({"width": width, "modes": modes}, grid) if stage == "pretrain" else FNO(width, modes)
    loads = stage in ("finetune", "zeroshot")
    names = [k for k in FNO(width, modes).state_dict() if loads and not k.startswith(pretext.dropped)]
    return model.num_params(), transferred_modules(names)


def synthetic_runs(
    *,
    sweep: str = "synthetic",
    systems: tuple[str, ...] = ("poisson",),
    shifts: tuple[str, ...] = ("id", "moderate"),
    sizes: tuple[tuple[int, int], ...] = ((16, 4), (32, 8)),
    n_trains: tuple[int, ...] = (8, 32, 128, 512, 2048),
    seeds: tuple[int, ...] = (0, 1, 2),
    strategies: tuple[str, ...] = ("supervised",),
    pretrain_systems: tuple[str, ...] = ("same",),
    zeroshot: bool = True,
    augments: tuple[str, ...] = (),
    noise: float = 0.05,
    rng_seed: int = 0,
) -> pd.DataFrame:
    """A summary-like table (docs/contracts.md columns) of pretrain, finetune, scratch and zero-shot rows.

    ``pretrain_systems`` entries are "same" (pretrained on the downstream system) or "mixed". Each of
    ``augments`` (none, scale, ...) is used for both stages, as a sweep's zip of ``pretrain.train.augment`` and
    ``train.augment`` does (scratch rows have no pretraining keys); empty: no augmentation columns.
    """
    rng = np.random.default_rng(rng_seed)
    rows: list[dict] = []
    size_rank = {size: i / max(len(sizes) - 1, 1) for i, size in enumerate(sizes)}
    for aug in augments or (None,):
        for (width, modes), seed, strategy in product(sizes, seeds, strategies):
            for psys in sorted({s if p == "same" else p for s in systems for p in pretrain_systems}):
                rows.append(_row(sweep, "pretrain", seed, width, modes, psys, strategy, None, None, None, 0.02, aug))
        gain = AUGMENT_GAIN.get(aug or "none", 1.0)
        for system, (level, shift), (width, modes), seed in product(systems, enumerate(shifts), sizes, seeds):
            transfer = 0.1 * 2.0**level * (1.5 - size_rank[(width, modes)])  # a_finetune / a_scratch
            for n in n_trains:
                err = (A_SCRATCH * n**-B_TRUE + C_TRUE) * gain
                rows.append(_row(sweep, "scratch", seed, width, modes, None, None, system, shift, n, err, aug,
                                 improving=n == min(n_trains)))  # fmt: skip
            for strategy, p in product(strategies, pretrain_systems):
                psys = system if p == "same" else p
                a = A_SCRATCH * transfer * STRATEGY_PENALTY.get(strategy, 1.5) * (1.2 if psys == "mixed" else 1.0)
                for n in n_trains:
                    err = (a * n**-B_TRUE + C_TRUE) * gain
                    rows.append(_row(sweep, "finetune", seed, width, modes, psys, strategy, system, shift, n, err, aug))
                if zeroshot:
                    err = 0.05 * (1 + 2 * level) * (1.2 - 0.4 * size_rank[(width, modes)])
                    rows.append(_row(sweep, "zeroshot", seed, width, modes, psys, strategy, system, shift, None, err,
                                     aug))  # fmt: skip
    frame = pd.DataFrame(rows)
    frame["test_rel_l2"] *= np.exp(rng.normal(0.0, noise, len(frame)))
    frame["best_val_rel_l2"] = frame["test_rel_l2"] * 1.02
    return frame


class JointLaw(NamedTuple):
    """err = E + A P^-a + B N^-b, the joint law of ``analysis.transfer.fit_joint`` (parameters in its order)."""

    E: float
    A: float
    a: float
    B: float
    b: float

    def err(self, p: np.ndarray | float, n: np.ndarray | float) -> np.ndarray:
        """The law's error at size ``p`` and ``n`` samples."""
        return self.E + self.A * np.asarray(p, dtype=float) ** -self.a + self.B * np.asarray(n, dtype=float) ** -self.b


JOINT_SCRATCH = JointLaw(0.004, 8.0, 0.4, 1.5, 0.5)
JOINT_FINETUNE = JointLaw(0.004, 8.0, 0.4, 0.3, 0.5)  # pretraining cuts the data term fivefold
JOINT_SIZES = ((8, 4), (16, 4), (16, 8), (32, 8))  # 17k to 1.1M parameters


def joint_runs(*, sweep: str = "joint", sizes: tuple[tuple[int, int], ...] = JOINT_SIZES,
               n_trains: tuple[int, ...] = (8, 32, 128, 512, 2048), seeds: tuple[int, ...] = (0, 1, 2),
               noise: float = 0.05, rng_seed: int = 0) -> pd.DataFrame:  # fmt: skip
    """Pretrain, fine-tune and scratch rows (poisson, shift id) whose errors follow JOINT_FINETUNE and JOINT_SCRATCH
    in the real parameter count P and N, times log-normal ``noise``; downstream runs train for EPOCHS epochs
    (``train.epochs``), so their compute grows with N as well as P (``analysis.compute``)."""
    rng = np.random.default_rng(rng_seed)
    rows = []
    for (width, modes), seed in product(sizes, seeds):
        rows.append(_row(sweep, "pretrain", seed, width, modes, "poisson", "supervised", None, None, None, 0.02))
        for stage, law, psys, strategy in (("scratch", JOINT_SCRATCH, None, None),
                                           ("finetune", JOINT_FINETUNE, "poisson", "supervised")):  # fmt: skip
            p = _model_facts(stage, strategy, width, modes)[0]
            rows += [_row(sweep, stage, seed, width, modes, psys, strategy, "poisson", "id", n, float(law.err(p, n)),
                          epochs=EPOCHS) for n in n_trains]  # fmt: skip
    frame = pd.DataFrame(rows)
    frame["test_rel_l2"] *= np.exp(rng.normal(0.0, noise, len(frame)))
    frame["best_val_rel_l2"] = frame["test_rel_l2"] * 1.02
    return frame


def tuned_runs(frame: pd.DataFrame, *, lrs: tuple[float, ...] = TUNE_LRS, noise: float = 0.05,
               rng_seed: int = 0) -> pd.DataFrame:  # fmt: skip
    """``frame`` with each finetune and scratch row replaced by one trial per learning rate of its tuning study.

    A trial's error is the row's times a log-parabola around an optimal learning rate that falls with N and is
    lower for fine-tuning than from scratch. Trials get ``tune.study`` (the row's id), ``tune.trial``,
    ``tune.spec`` (the grid search over ``lrs``, as ``harness.sweep.tune.trial_configs`` writes it),
    ``tune.optuna_trial``, ``tune.params`` (JSON) and ``train.lr``, and ``tune.best`` as ``results.parquet``
    marks it (``harness.store.collect.best_trials``: each study's lowest ``best_val_rel_l2``).
    """
    rng = np.random.default_rng(rng_seed)
    down = frame["stage"].isin(["finetune", "scratch"])
    rows = frame[down].reset_index(drop=True)
    best_lr = np.where(rows["stage"] == "scratch", 3e-3, 6e-4) * (rows["downstream.n_train"] / 64.0) ** -0.2
    spec = json.dumps({"metric": "val_rel_l2", "n_trials": len(lrs), "params": {"train.lr": {"kind": "grid",
                       "values": list(lrs)}}, "pruner": "none", "sampler": "grid", "seed": 0,
                       "stages": ["finetune", "scratch"]}, sort_keys=True)  # fmt: skip
    trials = []
    for i, lr in enumerate(lrs):
        penalty = 1 + 0.3 * (np.log10(lr) - np.log10(best_lr.astype(float))) ** 2
        trial = rows.assign(**{
            "id": rows["id"] + f"-t{i}", "tune.study": rows["id"], "tune.trial": i, "tune.spec": spec,
            "tune.optuna_trial": i,
            "tune.params": json.dumps({"train.lr": lr}), "train.lr": lr,
            "test_rel_l2": rows["test_rel_l2"] * penalty * np.exp(rng.normal(0.0, noise, len(rows))),
        })  # fmt: skip
        trials.append(trial.assign(best_val_rel_l2=trial["test_rel_l2"] * np.exp(rng.normal(0.0, noise, len(rows)))))
    out = pd.concat([frame[~down], *trials], ignore_index=True)
    return best_trials(out.drop(columns=["tune.best"], errors="ignore"))


def _row(
    sweep: str, stage: str, seed: int, width: int, modes: int, psys: str | None, strategy: str | None,
    system: str | None, shift: str | None, n_train: int | None, err: float, aug: str | None = None,
    improving: bool = False, epochs: int | None = None,
) -> dict:  # fmt: skip
    init = {"pretrain": None, "finetune": "pretrained"}.get(stage, stage)
    row = {
        "sweep": sweep, "stage": stage, "status": "ok", "error": "", "depends_on": "",
        "resolution": 32, "data_seed": seed if stage != "pretrain" else 0, "seed": seed, "init": init,
        "model.width": width, "model.modes": modes,
        "pretrain.system": psys, "pretrain.shift": "id" if psys else None, "pretrain.strategy": strategy,
        "pretrain.n_train": 32768 if psys else None,
        "downstream.system": system, "downstream.shift": shift, "downstream.n_train": n_train,
        "downstream.n_val": N_VAL if system else None, "train.lr": 1e-3 if system else None,
        "train.steps": STEPS if n_train else None,
    }  # fmt: skip
    if epochs is not None:  # a budget in epochs instead of STEPS (the key only where set: other ids stay)
        row |= {"train.steps": None, "train.epochs": epochs, "train.batch_size": BATCH}
    if aug is not None:  # only the stages that train with it have the key (a zero-shot row has no train settings)
        row["pretrain.train.augment"] = aug if psys else None
        row["train.augment"] = aug if system and stage != "zeroshot" else None
    if stage in ("finetune", "zeroshot"):
        pretrain = _row(sweep, "pretrain", seed, width, modes, psys, strategy, None, None, None, err, aug)
        row["depends_on"] = pretrain["id"]
    row["id"] = f"{stage[:2]}-" + hashlib.sha256(json.dumps(row, sort_keys=True).encode()).hexdigest()[:10]
    n_params, transferred = _model_facts(stage, strategy, width, modes)
    row |= {
        **_progress(stage, n_train, improving, epochs), "test_rel_l2": err, "n_params": n_params,
        "wall_s": 1.0, "device": "cpu", "torch_version": "2.4.0", "harness_version": "0.1.0",
        "git_rev": "synthetic", "transferred": transferred,
    }  # fmt: skip
    return row


def _progress(stage: str, n_train: int | None, improving: bool, budget_epochs: int | None = None) -> dict:
    """best_step, steps_run, epochs_run and budget_limited of a synthetic run (zero-shot runs train no step)."""
    if stage == "zeroshot":
        return {"best_step": 0, "steps_run": 0, "epochs_run": 0.0, "budget_limited": False}
    steps, epochs = (STEPS, STEPS * min(BATCH, n_train) / n_train) if n_train else (PRETRAIN_STEPS, PRETRAIN_EPOCHS)
    if n_train and budget_epochs:
        steps, epochs = budget_epochs * -(-n_train // min(BATCH, n_train)), budget_epochs
    best = steps if improving else int(0.6 * steps)
    return {"best_step": best, "steps_run": steps, "epochs_run": float(epochs), "budget_limited": improving}


def config_columns(frame: pd.DataFrame) -> list[str]:
    """The columns that come from a job's config (dotted names and the top-level config keys)."""
    return [c for c in frame.columns if "." in c or c in _CONFIG_TOP]


def write_synthetic_sweep(sweep_dir: Path, frame: pd.DataFrame, *, spec: dict | None = None) -> Path:
    """Write ``frame`` as a sweep folder through the store: ``sweep_dir/plan.json`` (``save_plan``) and one
    ``runs/<id>/summary.parquet`` per row (``write_summary``), as the jobs of a real sweep write them.

    A row's config columns (dotted names, and the top-level config keys) become its job's config; the others
    are its metrics. Columns a job does not use are null in its file, as a real job's are.
    """
    sweep_dir = Path(sweep_dir)
    config = _config_names(frame)
    metrics = [c for c in frame.columns if c not in config and c not in _NOT_METRICS]
    sweep = str(frame["sweep"].iloc[0]) if len(frame) else sweep_dir.name
    if spec is None:
        varied = [c for c in config if frame[c].nunique() > 1 and not c.startswith("tune.")]
        spec = {"name": sweep, "matrix": {c: sorted(frame[c].dropna().unique().tolist()) for c in varied}}
    rows = _rows(frame)
    jobs = frame_jobs(frame, sweep)
    save_plan(sweep_dir, sweep, json.loads(json.dumps(spec, default=_jsonable)), "synthetic", jobs)
    for job, row in zip(jobs, rows, strict=True):
        write_summary(sweep_dir, job, {c: row[c] for c in metrics if row[c] is not None})
    return sweep_dir


def frame_jobs(frame: pd.DataFrame, sweep: str | None = None) -> list[Job]:
    """The job of every row of ``frame``, as ``write_synthetic_sweep`` plans them (without writing anything)."""
    config = _config_names(frame)
    name = sweep or (str(frame["sweep"].iloc[0]) if len(frame) else "synthetic")
    return [Job.from_dict({"id": r["id"], "stage": r["stage"], "sweep": name, "depends_on": r["depends_on"] or None,
                           "config": _config(r, config), "point": {}}) for r in _rows(frame)]  # fmt: skip


def _config_names(frame: pd.DataFrame) -> list[str]:
    # init comes from the stage; the trial's summary columns (harness.job.trial.TrialRun.finish) are metrics
    return [c for c in config_columns(frame) if c not in ("init", "tune.best", *TRIAL_COLUMNS)]


def _rows(frame: pd.DataFrame) -> list[dict]:
    return _integral(frame).astype(object).where(frame.notna(), None).to_dict("records")


def _config(row: dict, columns: list[str]) -> dict:
    """A row's job config from its config columns; a row of a tuning study (``tune.study``) is trial 0 of an
    unnamed search unless its columns say otherwise (a trial's config names all three)."""
    config = nest({c: row[c] for c in columns if row[c] is not None})
    if "tune" in config:
        config["tune"] = {"trial": 0, "spec": "{}", **config["tune"]}
    return config


# Columns of a row that are neither config nor metrics: the summary row gets them from the job itself.
_NOT_METRICS = ("id", "stage", "sweep", "depends_on", "init", "tune.best")


def _integral(frame: pd.DataFrame) -> pd.DataFrame:
    """Float columns holding only whole numbers (counts with nulls) as nullable integers, as a job writes them."""
    out = frame.copy()
    for c in out.select_dtypes("float").columns:
        values = out[c].dropna()
        if len(values) and bool((values == values.round()).all()):
            out[c] = out[c].astype("Int64")
    return out


def _jsonable(value: object) -> object:
    return value.item() if isinstance(value, np.generic) else str(value)
