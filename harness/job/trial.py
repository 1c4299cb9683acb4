"""The optuna side of tuning, at run time: a trial job's life, the study storage, study summaries.

Used only by `harness.job.run` (a trial job) and the CLI (`harness tune-status`); the `tune:` schema and the trial
jobs `expand` makes are `harness.sweep.tune`. The trials of one sweep point share one study, stored in a
journal file under the sweep's folder (safe for many processes on a shared file system) or at a database
URL. A trial job owns one optuna trial, marked with its job id, so a killed and resubmitted job continues
its own trial instead of asking a new one: a study never holds more trials than the sweep planned. The
reported result of a sweep point is its best trial on validation (`harness.store.collect.best_trials`), never on test.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import warnings
from pathlib import Path
from typing import Any

from harness.job import Job, TrainConfig
from harness.store import State


class Pruned(Exception):
    """Raised from the evaluation hook when the pruner stops a trial; the job is recorded as `pruned`."""


def grid_point(tune: dict[str, Any], trial: int) -> dict[str, Any]:
    """The parameters of trial `trial` of a grid search (itertools.product order over the file's keys)."""
    keys = list(tune["params"])
    values = list(itertools.product(*(tune["params"][k]["values"] for k in keys)))[trial]
    return dict(zip(keys, values, strict=True))


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
        with warnings.catch_warnings():  # "experimental" since optuna 2.4, once per job in the submit log
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.PartialFixedSampler(grid_point(tune, trial),
                                                       optuna.samplers.RandomSampler(seed=0))
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

    def __init__(self, job: Job, sweep_path: Path):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        meta = job.config.tune
        assert meta is not None  # a trial job's config has its trial
        self.tune = {**json.loads(meta.spec), "storage": job.tune_storage}
        self.study = optuna.create_study(
            study_name=meta.study,
            storage=storage_url(sweep_path, self.tune),
            direction="minimize",
            load_if_exists=True,
            sampler=_sampler(self.tune, meta.trial),
            pruner=_pruner(self.tune["pruner"]),
        )
        owned = [t for t in self.study.get_trials(deepcopy=False) if t.user_attrs.get("job") == job.id]
        self.finished = bool(owned) and owned[-1].state.is_finished()
        if owned:  # a resubmitted job continues the trial it started (private id: optuna has no public lookup)
            self.trial = optuna.trial.Trial(self.study, owned[-1]._trial_id)
        else:
            self.trial = self.study.ask()
            self.trial.set_user_attr("job", job.id)
        self.params = {key: self._suggest(key, spec) for key, spec in self.tune["params"].items()}

    def _suggest(self, key: str, spec: dict[str, Any]) -> Any:
        if spec["kind"] in ("choice", "grid"):
            return self.trial.suggest_categorical(key, spec["values"])
        if spec["kind"] == "int":
            return self.trial.suggest_int(key, int(spec["low"]), int(spec["high"]))
        return self.trial.suggest_float(key, spec["low"], spec["high"], log=spec["kind"] == "log_uniform")

    def apply(self, train: TrainConfig | None) -> TrainConfig:
        """The downstream train settings with this trial's parameters."""
        assert train is not None  # a tuned stage trains (finetune, scratch)
        return dataclasses.replace(train, **{key.removeprefix("train."): value for key, value in self.params.items()})

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
            status = State(metrics["status"])
            if status is State.OK:
                self.study.tell(self.trial, metrics[f"best_{self.tune['metric']}"], skip_if_finished=True)
            else:
                state = TrialState.PRUNED if status is State.PRUNED else TrialState.FAIL
                self.study.tell(self.trial, state=state, skip_if_finished=True)
        return {
            "tune.optuna_trial": self.trial.number,
            "tune.params": json.dumps(self.params, sort_keys=True),
            **self.params,
        }


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
