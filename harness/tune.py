"""Hyperparameter tuning inside a sweep: one optuna study per sweep point, each trial an ordinary job.

`expand` turns every tuned downstream job into `n_trials` trial jobs (ids differ by the trial index) that
share one study, stored in a journal file under the sweep's folder (safe for many processes on a shared
file system) or at a database URL. A trial job owns one optuna trial, marked with its job id, so a killed
and resubmitted job continues its own trial instead of asking a new one: a study never holds more trials
than the sweep planned. The reported result of a sweep point is its best trial on validation
(`best_trials`), never on test.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from harness.sweep.spec import Where, check_key, check_value

METRICS = ("val_rel_l2",)  # tuning reads validation only; the test error is reported, never optimised
SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("none", "median", "successive_halving")
KINDS = ("log_uniform", "uniform", "int", "choice", "grid")
STAGES = ("finetune", "scratch")
KEYS = ("params", "n_trials", "metric", "sampler", "seed", "pruner", "storage", "stages")


class Pruned(Exception):
    """Raised from the evaluation hook when the pruner stops a trial; the job is recorded as `pruned`."""


def _space(params: Any, where: Where) -> dict[str, dict[str, Any]]:
    """Validate `params`: {train.key: {kind: args}} -> {train.key: {"kind": kind, "values" | "low","high"}}."""
    if not isinstance(params, dict) or not params:
        raise where.fail("tune.params", "no parameters to search", "add e.g. `train.lr: {log_uniform: [1e-5, 1e-2]}`")
    space = {}
    for key, spec in params.items():
        loc = f"tune.params.{key}"
        if not str(key).startswith("train."):
            raise where.fail(
                loc, f"`{key}` cannot be tuned", "tune downstream train settings: train.lr, train.weight_decay, ..."
            )
        check_key(key, where, loc)
        if not (isinstance(spec, dict) and len(spec) == 1 and next(iter(spec)) in KINDS):
            raise where.fail(
                loc, f"invalid search space {spec!r}", "write {KIND: ...} with KIND one of " + ", ".join(KINDS)
            )
        ((kind, args),) = spec.items()
        if kind in ("choice", "grid"):
            if not isinstance(args, list) or not args:
                raise where.fail(loc, f"{kind} needs a non-empty list of values", f"write {{{kind}: [a, b, c]}}")
            space[key] = {"kind": kind, "values": [check_value(key, v, where, loc) for v in args]}
            continue
        if not (isinstance(args, list) and len(args) == 2):
            raise where.fail(loc, f"{kind} needs [low, high], got {args!r}", f"write {{{kind}: [low, high]}}")
        low, high = (check_value(key, a, where, loc) for a in args)
        if not low < high:
            raise where.fail(
                loc, f"`low < high` must hold, but got (low={low}, high={high})", "swap or widen the range"
            )
        if kind == "log_uniform" and low <= 0:
            raise where.fail(loc, f"log_uniform needs low > 0, got {low}", "use a positive lower bound")
        space[key] = {"kind": kind, "low": low, "high": high}
    return space


def parse_tune(raw: Any, where: Where) -> dict[str, Any] | None:
    """Validate a sweep's `tune:` block into a canonical dict (None when there is no block)."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise where.fail("tune", "must be a mapping", "write `tune: {params: {train.lr: {grid: [1e-4, 1e-3]}}}`")
    for key in raw:
        if key not in KEYS:
            raise where.fail(f"tune.{key}", f"unknown tune key `{key}`", "valid keys: " + ", ".join(KEYS))
    space = _space(raw.get("params"), where)
    choices = {"metric": (METRICS, "val_rel_l2"), "sampler": (SAMPLERS, "tpe"), "pruner": (PRUNERS, "none")}
    tune: dict[str, Any] = {"params": space, "seed": raw.get("seed", 0)}
    for key, (valid, default) in choices.items():
        value = raw.get(key, default)
        if value not in valid:
            why = "the test error is never used for tuning" if value == "test_rel_l2" else "it is not logged"
            problem = f"cannot tune on {value!r}: {why}" if key == "metric" else f"unknown {key} {value!r}"
            raise where.fail(f"tune.{key}", problem, "choose one of " + ", ".join(valid))
        tune[key] = value
    stages = raw.get("stages", list(STAGES))
    if not isinstance(stages, list) or not stages or not set(stages) <= set(STAGES):
        raise where.fail("tune.stages", f"invalid stages {stages!r}", "choose from " + ", ".join(STAGES))
    tune["stages"] = sorted(stages)
    if tune["sampler"] == "grid" and any(s["kind"] not in ("grid", "choice") for s in space.values()):
        raise where.fail("tune.sampler", "the grid sampler needs every parameter as {grid: [...]}", "use tpe or random")
    grid = math.prod(len(s["values"]) for s in space.values()) if tune["sampler"] == "grid" else None
    n_trials = raw.get("n_trials", grid)
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
        raise where.fail("tune.n_trials", f"must be an integer >= 1, got {n_trials!r}", "write `n_trials: 20`")
    if grid is not None and n_trials != grid:
        raise where.fail("tune.n_trials", f"the grid has {grid} points but n_trials is {n_trials}", "omit n_trials")
    tune["n_trials"] = n_trials
    storage = raw.get("storage")
    if storage is not None and not isinstance(storage, str):
        raise where.fail(
            "tune.storage", f"invalid storage {storage!r}", "give a database URL, or omit it for a journal file"
        )
    tune["storage"] = storage
    return tune


def grid_point(tune: dict[str, Any], trial: int) -> dict[str, Any]:
    """The parameters of trial `trial` of a grid search (itertools.product order over the file's keys)."""
    keys = list(tune["params"])
    values = list(itertools.product(*(tune["params"][k]["values"] for k in keys)))[trial]
    return dict(zip(keys, values, strict=True))


def trial_configs(config: dict[str, Any], study: str, tune: dict[str, Any]) -> list[dict[str, Any]]:
    """One config per trial: the point's config plus {study, trial index, search definition}."""
    spec = json.dumps({k: v for k, v in tune.items() if k != "storage"}, sort_keys=True)
    return [{**config, "tune": {"study": study, "trial": k, "spec": spec}} for k in range(tune["n_trials"])]


def storage_url(sweep_path: Path, tune: dict[str, Any] | None = None) -> str | Any:
    """The study storage: the tune block's URL, else a journal file under <sweep>/tune/."""
    if tune and tune.get("storage"):
        return tune["storage"]
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    path = Path(sweep_path) / "tune" / "journal.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path)))


def _sampler(tune: dict[str, Any], trial: int):
    import optuna

    if tune["sampler"] == "grid":  # each trial job takes its own grid point: no two processes race for one
        return optuna.samplers.PartialFixedSampler(grid_point(tune, trial), optuna.samplers.RandomSampler(seed=0))
    seed = tune["seed"] + trial  # a trial's draw does not depend on the order trials start in
    return optuna.samplers.RandomSampler(seed) if tune["sampler"] == "random" else optuna.samplers.TPESampler(seed=seed)


def _pruner(name: str):
    import optuna

    return {
        "none": optuna.pruners.NopPruner,
        "median": optuna.pruners.MedianPruner,
        "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
    }[name]()


class TrialRun:
    """The optuna trial a trial job owns: its parameters, epoch reports to the pruner, and the final tell."""

    def __init__(self, job: dict[str, Any], sweep_path: Path):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        meta = job["config"]["tune"]
        self.tune = {**json.loads(meta["spec"]), "storage": job.get("tune_storage")}
        self.study = optuna.create_study(
            study_name=meta["study"],
            storage=storage_url(sweep_path, self.tune),
            direction="minimize",
            load_if_exists=True,
            sampler=_sampler(self.tune, meta["trial"]),
            pruner=_pruner(self.tune["pruner"]),
        )
        owned = [t for t in self.study.get_trials(deepcopy=False) if t.user_attrs.get("job") == job["id"]]
        self.finished = bool(owned) and owned[-1].state.is_finished()
        if owned:  # a resubmitted job continues the trial it started (private id: optuna has no public lookup)
            self.trial = optuna.trial.Trial(self.study, owned[-1]._trial_id)
        else:
            self.trial = self.study.ask()
            self.trial.set_user_attr("job", job["id"])
        self.params = {key: self._suggest(key, spec) for key, spec in self.tune["params"].items()}

    def _suggest(self, key: str, spec: dict[str, Any]) -> Any:
        if spec["kind"] in ("choice", "grid"):
            return self.trial.suggest_categorical(key, spec["values"])
        if spec["kind"] == "int":
            return self.trial.suggest_int(key, int(spec["low"]), int(spec["high"]))
        return self.trial.suggest_float(key, spec["low"], spec["high"], log=spec["kind"] == "log_uniform")

    def apply(self, train: dict[str, Any]) -> dict[str, Any]:
        """The downstream train settings with this trial's parameters."""
        return {**train, **{key.removeprefix("train."): value for key, value in self.params.items()}}

    def report(self, row: dict[str, Any]) -> None:
        """Evaluation hook: report the validation error at its step; raise Pruned when the pruner says stop."""
        if self.finished:
            return
        self.trial.report(row["val_rel_l2"], int(row["step"]))
        if self.trial.should_prune():
            raise Pruned(f"pruned at step {row['step']} (val {row['val_rel_l2']:.4g})")

    def finish(self, metrics: dict[str, Any]) -> dict[str, Any]:
        """Tell the study how the trial ended; returns the summary columns naming the trial and its parameters."""
        from optuna.trial import TrialState

        if not self.finished:
            status = metrics["status"]
            if status == "ok":
                self.study.tell(self.trial, metrics[f"best_{self.tune['metric']}"], skip_if_finished=True)
            else:
                state = TrialState.PRUNED if status == "pruned" else TrialState.FAIL
                self.study.tell(self.trial, state=state, skip_if_finished=True)
        return {
            "tune.optuna_trial": self.trial.number,
            "tune.params": json.dumps(self.params, sort_keys=True),
            **self.params,
        }


def best_trials(table: pd.DataFrame) -> pd.DataFrame:
    """Mark each study's best ok trial on validation (`tune.best`); untuned rows count as their own best."""
    table = table.copy()
    if "tune.study" not in table.columns:
        table["tune.best"] = True
        return table
    tuned = table["tune.study"].notna()
    ok = tuned & (table["status"] == "ok")
    best_index = table[ok].groupby("tune.study")["best_val_rel_l2"].idxmin()
    table["tune.best"] = ~tuned
    table.loc[best_index.values, "tune.best"] = True
    return table


def study_summaries(sweep_path: Path, tune: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Per study: trials planned states, best value and best parameters (for `harness tune-status`)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = storage_url(sweep_path, tune)
    out = []
    for summary in optuna.get_all_study_summaries(storage):
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        trials = study.get_trials(deepcopy=False)
        states = {s.name.lower(): sum(t.state == s for t in trials) for s in {t.state for t in trials}}
        done = [t for t in trials if t.state.name == "COMPLETE"]
        best = min(done, key=lambda t: t.value) if done else None
        out.append(
            {
                "study": summary.study_name,
                "trials": len(trials),
                **states,
                "best_value": best.value if best else float("nan"),
                "best_params": json.dumps(best.params, sort_keys=True) if best else "",
            }
        )
    return out
