"""Read a sweep's results folder (``plan.json`` + ``runs/*/summary.parquet``) into one typed DataFrame.

The summary files are read by ``harness.store.collect.collect_table``, the one reader of the run folders: it reuses
``results.parquet`` (written by every local ``harness submit``) for the files that did not change since, and
reads the others with one ``pyarrow.dataset`` (file by file when a corrupt file must be named).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from harness.errors import HarnessError
from harness.store import State
from harness.store.collect import collect_table
from harness.store.folders import Plan, read_plan, run_dir
from harness.store.manifest import check_recorded
from harness.store.stale import stale_note
from harness.train import DEFAULT_METRIC, METRICS

STATUSES = tuple(s.value for s in (State.OK, State.FAILED, State.DIVERGED, State.BLOCKED, State.PRUNED))
NUMERIC_COLUMNS = ("model.width", "model.modes", "n_params", "downstream.n_train", "seed",
                   *(f"test_{name}" for name in METRICS))
ERROR = f"test_{DEFAULT_METRIC}"  # the column every fit, claim and figure reads (analysis.curves.ERR)
ROLLOUT = f"rollout_step_{DEFAULT_METRIC}"  # a rollout's per-frame errors (analysis.figures.rollout)
STRING_COLUMNS = (
    "id", "stage", "status", "error", "depends_on", "init", "downstream.system", "downstream.shift",
    "pretrain.system", "pretrain.strategy",
)  # fmt: skip


class ReportError(HarnessError):
    """A sweep folder that cannot be analysed (no plan, no runs), or data a fit cannot use."""


@dataclass(frozen=True)
class LoadedRuns:
    """Every readable summary row of a sweep (``all``), the ok ones (``ok``) and what went wrong.

    ``problems`` holds (job id, reason) for unreadable summary files and for rows whose status is neither ok
    nor pruned (a trial its pruner stopped is a tuning outcome, counted as pruned, not a problem);
    ``missing`` the planned job ids without a summary file, or with an ok one whose files no longer match its
    manifest (``_incomplete``: a submit reruns it); ``planned`` the number of jobs in
    ``plan.json``; ``stale_note`` the line on runs no longer in the plan ("" when none, ``harness.store.stale``).
    """

    all: pd.DataFrame
    ok: pd.DataFrame
    problems: list[tuple[str, str]]
    missing: list[str]
    unreadable: list[str]
    planned: int
    plan: Plan | None
    stale_note: str = ""
    metric: str = DEFAULT_METRIC  # the metric ERROR holds (``harness.train.METRICS``)

    def counts(self) -> dict[str, int]:
        """Jobs per outcome: planned, each status, unreadable summary files and missing runs."""
        status = self.all["status"].value_counts()
        out = {"planned": self.planned}
        out.update({s: int(status.get(s, 0)) for s in STATUSES})
        out["other"] = int(len(self.all) - sum(out[s] for s in STATUSES))
        out["unreadable"] = len(self.unreadable)
        out["missing"] = len(self.missing)
        return out


def load_runs(sweep_dir: Path, metric: str = DEFAULT_METRIC) -> LoadedRuns:
    """Load ``sweep_dir/plan.json`` and every ``sweep_dir/runs/<job id>/summary.parquet``.

    ``ok`` holds the ok rows that are their sweep point's result: in a tuned sweep only each study's best trial
    (``tune.best``). ``metric`` (a name of ``harness.train.METRICS``) is the error the analysis reads: its
    ``test_<metric>`` and ``rollout_step_<metric>`` columns fill ``ERROR`` and ``ROLLOUT`` (``use_metric``).
    Raises ReportError when the folder holds neither a plan nor any summary file, or no run records ``metric``.
    """
    sweep_dir = Path(sweep_dir)
    plan = _read_plan(sweep_dir)
    collected = collect_table(sweep_dir, must_write=False)
    if plan is None and not collected.files:
        raise ReportError(f"no results under {sweep_dir}: run `harness submit` first")
    bad = collected.unreadable
    if metric != DEFAULT_METRIC and collected.files and f"test_{metric}" not in collected.table.column_names:
        raise ReportError(f"{sweep_dir}: no run records test_{metric} (runs made before harness recorded it): "
                          f"report --metric {DEFAULT_METRIC}, or delete the runs and submit again")
    frame = _typed_frame(collected.table)
    damaged = _incomplete(sweep_dir, frame)
    frame = frame[~frame["id"].isin(damaged)].reset_index(drop=True)
    ids = set(frame["id"].dropna()) | {job for job, _ in bad}
    planned_ids = [job.id for job in plan.jobs] if plan else []
    missing = [job for job in planned_ids if job not in ids]
    failed = frame[~frame["status"].isin([State.OK.value, State.PRUNED.value])]
    # an ok row without a finite test error (written before such rows became diverged) is skipped, not fitted;
    # so is a downstream one without the chosen metric (a pretext pretraining has none: its target is no field)
    column, status_ok = f"test_{metric}", frame["status"] == State.OK.value
    recorded = np.isfinite(frame[ERROR])  # every job's relative L2
    chosen = np.isfinite(frame[column]) | (frame["stage"] == "pretrain")
    infinite = status_ok & ~(recorded & chosen)
    problems = list(bad) + [(job, f"incomplete: {why}; `harness submit` reruns it") for job, why in damaged.items()] + [
        (str(job), f"{status}: {error}" if error else str(status))
        for job, status, error in zip(failed["id"], failed["status"], failed["error"].fillna(""), strict=True)
    ] + [(str(frame.at[i, "id"]), f"ok but {name} is {frame.at[i, name]}: skipped")
         for i in frame.index[infinite] for name in [ERROR if not recorded[i] else column]]
    frame = use_metric(frame, metric)
    ok = status_ok & ~infinite
    if "tune.best" in frame:
        ok &= frame["tune.best"].fillna(False).astype(bool)
    return LoadedRuns(
        all=frame, ok=frame[ok].reset_index(drop=True), problems=problems, missing=missing,
        unreadable=[job for job, _ in bad], planned=len(planned_ids) if plan else collected.files, plan=plan,
        stale_note=stale_note(sweep_dir, plan.jobs) if plan else "", metric=metric,
    )  # fmt: skip


def use_metric(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    """``frame`` with the columns the analysis reads its errors from (``ERROR``, ``ROLLOUT``) holding ``metric``'s
    (``test_<metric>``, ``rollout_step_<metric>``), and ``attrs["metric"]`` naming it for the figures' labels:
    every fit, claim and figure then follows ``metric``. The results Parquet keeps every recorded column."""
    frame = frame.copy()
    if metric != DEFAULT_METRIC:
        frame[ERROR] = frame[f"test_{metric}"]
        if f"rollout_step_{metric}" in frame:
            frame[ROLLOUT] = frame[f"rollout_step_{metric}"]
    frame.attrs["metric"] = metric
    return frame


def check_metric(metric: str) -> None:
    """Refuse a metric name that is not one of ``harness.train.METRICS``."""
    if metric not in METRICS:
        raise ReportError(f"--metric {metric!r} is not a metric; known: {', '.join(METRICS)}")


def _incomplete(sweep_dir: Path, frame: pd.DataFrame) -> dict[str, str]:
    """Job id -> what is wrong, for the ok rows whose files no longer match their manifest
    (``harness.store.manifest.check_recorded``: a folder without one, or a file it never recorded, is left alone)."""
    out = {}
    for job in frame.loc[frame["status"] == State.OK.value, "id"]:
        if problems := check_recorded(run_dir(sweep_dir, str(job))):
            out[str(job)] = "; ".join(problems)
    return out


def _read_plan(sweep_dir: Path) -> Plan | None:
    """The sweep's plan through the store (None when there is none); an unreadable one is a ReportError."""
    try:
        return read_plan(sweep_dir, missing_ok=True)
    except HarnessError as exc:
        raise ReportError(str(exc)) from None


def _typed_frame(table: pa.Table) -> pd.DataFrame:
    """The rows as a DataFrame: numeric axes numeric, text as strings, nested values as their JSON text."""
    for i, column in enumerate(table.schema):
        if pa.types.is_nested(column.type):
            text = pa.array([None if v is None else json.dumps(v) for v in table.column(i).to_pylist()])
            table = table.set_column(i, column.name, text.cast(pa.string()))
    frame = table.to_pandas()
    for name in NUMERIC_COLUMNS:
        frame[name] = pd.to_numeric(frame[name]) if name in frame else float("nan")
    for name in STRING_COLUMNS:
        frame[name] = frame[name].astype("string") if name in frame else pd.Series(pd.NA, frame.index, "string")
    frame["status"] = frame["status"].fillna("unknown")
    return frame.sort_values("id", kind="stable").reset_index(drop=True)
