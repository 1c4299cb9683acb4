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

STATUSES = tuple(s.value for s in (State.OK, State.FAILED, State.DIVERGED, State.BLOCKED, State.PRUNED))
NUMERIC_COLUMNS = ("model.width", "model.modes", "n_params", "downstream.n_train", "seed", "test_rel_l2")
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

    def counts(self) -> dict[str, int]:
        """Jobs per outcome: planned, each status, unreadable summary files and missing runs."""
        status = self.all["status"].value_counts()
        out = {"planned": self.planned}
        out.update({s: int(status.get(s, 0)) for s in STATUSES})
        out["other"] = int(len(self.all) - sum(out[s] for s in STATUSES))
        out["unreadable"] = len(self.unreadable)
        out["missing"] = len(self.missing)
        return out


def load_runs(sweep_dir: Path) -> LoadedRuns:
    """Load ``sweep_dir/plan.json`` and every ``sweep_dir/runs/<job id>/summary.parquet``.

    ``ok`` holds the ok rows that are their sweep point's result: in a tuned sweep only each study's best trial
    (``tune.best``). Raises ReportError when the folder holds neither a plan nor any summary file.
    """
    sweep_dir = Path(sweep_dir)
    plan = _read_plan(sweep_dir)
    collected = collect_table(sweep_dir, must_write=False)
    if plan is None and not collected.files:
        raise ReportError(f"no results under {sweep_dir}: run `harness submit` first")
    bad = collected.unreadable
    frame = _typed_frame(collected.table)
    damaged = _incomplete(sweep_dir, frame)
    frame = frame[~frame["id"].isin(damaged)].reset_index(drop=True)
    ids = set(frame["id"].dropna()) | {job for job, _ in bad}
    planned_ids = [job.id for job in plan.jobs] if plan else []
    missing = [job for job in planned_ids if job not in ids]
    failed = frame[~frame["status"].isin([State.OK.value, State.PRUNED.value])]
    # an ok row without a finite test error (written before such rows became diverged) is skipped, not fitted
    infinite = (frame["status"] == State.OK.value) & ~np.isfinite(frame["test_rel_l2"].astype(float))
    problems = list(bad) + [(job, f"incomplete: {why}; `harness submit` reruns it") for job, why in damaged.items()] + [
        (str(job), f"{status}: {error}" if error else str(status))
        for job, status, error in zip(failed["id"], failed["status"], failed["error"].fillna(""), strict=True)
    ] + [(str(job), f"ok but test_rel_l2 is {value}: skipped") for job, value in
         zip(frame["id"][infinite], frame["test_rel_l2"][infinite], strict=True)]
    ok = (frame["status"] == State.OK.value) & ~infinite
    if "tune.best" in frame:
        ok &= frame["tune.best"].fillna(False).astype(bool)
    return LoadedRuns(
        all=frame, ok=frame[ok].reset_index(drop=True), problems=problems, missing=missing,
        unreadable=[job for job, _ in bad], planned=len(planned_ids) if plan else collected.files, plan=plan,
        stale_note=stale_note(sweep_dir, plan.jobs) if plan else "",
    )  # fmt: skip


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
