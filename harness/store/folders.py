"""Results on disk: the sweep folder layout, the plan, the summary row, and the state of each job from its folder.

```
results/.current                  name of the current sweep (set by `harness expand`)
results/<sweep>/plan.json         the sweep definition and its jobs (written and read here only)
results/<sweep>/jobs.parquet      the same jobs as a flat table
results/<sweep>/runs/<job_id>/    config.json, epochs.parquet, manifest.json, summary.parquet, ckpt/, error.txt
results/<sweep>/results.parquet   every summary row in one table (``harness.store.collect``)
```
Each job's folder is its state: resume is a scan of folders, never a database that can drift from the files.
Every file is written through ``harness.store.atomic.write_atomic``. The summary row's schema lives here
(``summary_row``): the job's config flattened into dotted columns, the metrics with their defaults, provenance.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from harness.errors import HarnessError
from harness.job import Job
from harness.job.provenance import versions
from harness.store import DEFAULT_ROOT, PLAIN_NAME, Stage, State
from harness.store.atomic import write_atomic, write_json_atomic, write_text_atomic
from harness.store.manifest import check_manifest, write_manifest
from harness.sweep.dotted import flatten
from harness.train import METRICS

PLAN = "plan.json"
EVAL_ROWS = "eval.parquet"  # a run folder's scores on other sources and grids (harness.job.evaluate)
# Metric columns of every summary row with their values when a job did not produce them (failed, blocked...).
METRIC_DEFAULTS: dict[str, Any] = {"error": "", **{f"test_{name}": float("nan") for name in METRICS},
                                   "best_val_rel_l2": float("nan"),
                                   "best_step": -1, "steps_run": 0, "epochs_run": 0.0, "budget_limited": False,
                                   "n_params": 0, "transferred": ""}

__all__ = ["DEFAULT_ROOT", "METRIC_DEFAULTS", "Plan", "current_sweep", "disk_state", "flat_row", "incomplete",
           "load_plan", "read_plan", "read_summary", "record_blocked", "run_dir", "save_plan", "summary_row",
           "sweep_dir", "write_json_atomic", "write_parquet_atomic", "write_plan", "write_summary"]


def write_parquet_atomic(path: Path, rows: list[dict[str, Any]] | pd.DataFrame) -> None:
    """Write rows (or a DataFrame) as a Parquet file, atomically.

    Rows are converted by pyarrow directly, as pandas would (NaN as null, text as large_string), a few times
    faster than through a DataFrame: a sweep writes one summary file per job.
    """
    table = pa.Table.from_pandas(rows, preserve_index=False) if isinstance(rows, pd.DataFrame) else _arrow(rows)
    write_atomic(path, lambda fh: pq.write_table(table, fh))


def _arrow(rows: list[dict[str, Any]]) -> pa.Table:
    keys = dict.fromkeys(key for row in rows for key in row)
    return pa.table({key: _column([row.get(key) for row in rows]) for key in keys})


def _column(values: list[Any]) -> pa.Array:
    """One column as pandas would write it: NaN as null in a float column, text as large_string."""
    array = pa.array(values)
    if pa.types.is_floating(array.type):
        return pa.array(values, type=array.type, from_pandas=True)
    return array.cast(pa.large_string()) if array.type == pa.string() else array


def sweep_dir(root: Path, name: str) -> Path:
    """The results folder of sweep ``name`` (a plain name: it never leaves ``root``)."""
    if not PLAIN_NAME.fullmatch(name):
        raise HarnessError(f"{name!r} is not a sweep name (letters, digits, - _ .; no path): name a sweep under "
                           f"{root}, or its sweep file")
    return Path(root) / name


def run_dir(sweep_path: Path, job_id: str) -> Path:
    """The folder one job writes to."""
    return Path(sweep_path) / "runs" / job_id


# -- the plan -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """An expanded sweep as its plan.json holds it: the sweep's name, the file it was expanded from, that file's
    mapping as written (``spec``: what `harness submit` compares the file with), its jobs, pretraining first, and
    the folder it lives in."""

    sweep: str
    source: str
    spec: dict[str, Any]
    jobs: list[Job]
    folder: Path  # where it lives (not in the file)


def write_plan(root: Path, name: str, spec: dict[str, Any], source: str, jobs: list[Job]) -> Path:
    """Write the plan of sweep ``name`` under ``root`` (``save_plan``) and make it the current sweep; returns
    the sweep folder."""
    folder = save_plan(sweep_dir(root, name), name, spec, source, jobs)
    write_text_atomic(Path(root) / ".current", name + "\n")
    return folder


def current_sweep(root: Path) -> Path:
    """The folder of the current sweep (the last one `harness expand` wrote under ``root``)."""
    current = Path(root) / ".current"
    if not current.is_file():
        raise HarnessError(f"no current sweep under {root}; run `harness expand SWEEP.yaml` first")
    name = current.read_text(errors="replace").strip()
    if not PLAIN_NAME.fullmatch(name):
        raise HarnessError(f"{current} names {name[:200]!r}, not a sweep under {root}: run `harness expand "
                           "SWEEP.yaml` to set the current sweep")
    return sweep_dir(root, name)


def save_plan(folder: Path, name: str, spec: dict[str, Any], source: str, jobs: list[Job]) -> Path:
    """Write ``folder``/plan.json (sweep name, source file, the sweep file's mapping, jobs) and jobs.parquet (the
    jobs as flat rows); returns the folder.

    plan.json holds one job per line (JSON's C encoder: an indented dump of 100,000 jobs took most of a minute).
    """
    head = json.dumps({"source": source, "spec": spec, "sweep": name}, sort_keys=True, default=str)
    lines = ",\n".join(json.dumps(job.to_dict(), sort_keys=True, default=str) for job in jobs)
    write_text_atomic(Path(folder) / PLAN, f'{head[:-1]}, "jobs": [\n{lines}\n]}}\n')
    write_parquet_atomic(Path(folder) / "jobs.parquet", [flat_row(j) for j in jobs])
    return Path(folder)


def read_plan(sweep_path: Path, *, missing_ok: bool = False) -> Plan | None:
    """The whole plan of an expanded sweep (``Plan``: its jobs typed, ``harness.job.Job``).

    A missing plan raises ``HarnessError`` with the fix (or gives None with ``missing_ok``); so does an
    unreadable one.
    """
    path = Path(sweep_path) / PLAN
    if not path.is_file():
        if missing_ok:
            return None
        raise HarnessError(f"{path}: no plan; run `harness expand SWEEP.yaml` first")
    try:
        plan = json.loads(path.read_text())
        if not isinstance(plan, dict) or not isinstance(plan["jobs"], list):
            raise KeyError("jobs")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise HarnessError(f"{path}: unreadable plan ({exc}); run `harness expand SWEEP.yaml` again") from None
    for job in plan["jobs"]:
        _check_job_names(path, job)
    try:
        jobs = [Job.from_dict(job) for job in plan["jobs"]]
    except HarnessError as exc:
        raise HarnessError(f"{path}: unreadable plan ({exc}); run `harness expand SWEEP.yaml` again") from None
    return Plan(plan.get("sweep", Path(sweep_path).name), plan.get("source", ""), plan.get("spec", {}), jobs,
                Path(sweep_path))


def _check_job_names(path: Path, job: Any) -> None:
    """A plan's job ids, dependencies and sweep names become folder names: only plain names are accepted."""
    names = [job.get("id"), job.get("sweep"), job.get("depends_on") or "x"] if isinstance(job, dict) else [None]
    if not all(isinstance(n, str) and PLAIN_NAME.fullmatch(n) for n in names):
        shown = {k: job.get(k) for k in ("id", "sweep", "depends_on")} if isinstance(job, dict) else job
        raise HarnessError(f"{path}: job {shown} has an id or sweep name that is not a plain name (letters, digits, "
                           "- _ .; no path); run `harness expand SWEEP.yaml` again to rewrite the plan")


def load_plan(sweep_path: Path) -> list[Job]:
    """The jobs of an expanded sweep (pretraining first)."""
    plan = read_plan(sweep_path)
    assert plan is not None  # read_plan raises when there is none
    return plan.jobs


# What a job's folder must hold besides an ok summary for the result to be trusted (a pretraining's dependents
# load its best weights and statistics); recorded in its manifest, checked by ``incomplete``: it reruns (resuming).
REQUIRED_FILES = {"pretrain": ("epochs.parquet", "ckpt/best.pt", "stats.json"),
                  "finetune": ("epochs.parquet",), "scratch": ("epochs.parquet",), "zeroshot": ()}


# -- the summary row ------------------------------------------------------------------------------------------


def flat_row(job: Job) -> dict[str, Any]:
    """One job as a flat table row: id, stage, depends_on and the dotted config keys in sorted order (lists as JSON
    text)."""
    row = {"id": job.id, "stage": str(job.stage), "sweep": job.sweep, "init": Stage(job.stage).init,
           "depends_on": job.depends_on or ""}
    for key, value in flatten(job.to_dict()["config"], sort=True).items():
        row[key] = json.dumps(value) if isinstance(value, list) else value
    return row


def summary_row(job: Job, metrics: dict[str, Any], *, wall_s: float = 0.0,
                device: str = "") -> dict[str, Any]:
    """A job's summary row: config columns, ``METRIC_DEFAULTS`` overridden by ``metrics`` (which must hold the
    status), then wall time, device and provenance (``harness.job.provenance.versions``)."""
    row = {**flat_row(job), **METRIC_DEFAULTS, "wall_s": wall_s, "device": device, **versions(), **metrics}
    row["status"] = str(State(row["status"]))
    return {**row, **finite_verdict(row)}


def finite_verdict(row: dict[str, Any]) -> dict[str, Any]:
    """An ok row must carry finite errors: a best validation or test error that is NaN or infinite makes it
    ``diverged`` with the reason (a pretraining in that state would hand its dependents nothing usable).
    Returns the status and error to use (the row's own when they hold)."""
    if row["status"] != State.OK:
        return {}
    bad = [key for key in ("best_val_rel_l2", "test_rel_l2") if not math.isfinite(float(row[key]))]
    if not bad:
        return {}
    what = ", ".join(f"{key} is {row[key]}" for key in bad)
    return {"status": str(State.DIVERGED), "error": f"{what}: no finite result; lower the learning rate "
                                                    "(`harness submit --retry-failed` reruns it)"}


def write_summary(sweep_path: Path, job: Job, metrics: dict[str, Any], *, wall_s: float = 0.0,
                  device: str = "") -> dict[str, Any]:
    """Write a job's one-row summary.parquet (``summary_row``) into its run folder, last; an ok row's
    ``REQUIRED_FILES`` are first recorded in the folder's manifest (``harness.store.manifest``). Returns the row."""
    row = summary_row(job, metrics, wall_s=wall_s, device=device)
    folder = run_dir(sweep_path, job.id)
    if row["status"] == State.OK:
        write_manifest(folder, REQUIRED_FILES[job.stage])
    write_parquet_atomic(folder / "summary.parquet", [row])
    return row


def record_blocked(sweep_path: Path, job: Job, dep_state: State | str) -> dict[str, Any]:
    """Record a downstream job as blocked by its pretraining job (in state ``dep_state``); returns the row."""
    error = f"pretraining job {job.depends_on} is {dep_state}; fix it and run `harness submit` again"
    return write_summary(sweep_path, job, {"status": State.BLOCKED, "error": error})


def read_summary(run_path: Path) -> dict[str, Any] | None:
    """The summary row of a finished job, or None when it is missing or unreadable (then the job reruns)."""
    path = Path(run_path) / "summary.parquet"
    if not path.is_file():
        return None
    try:
        rows = pd.read_parquet(path).to_dict("records")
    except Exception:  # a corrupt file is as good as none: the job reruns and rewrites it
        return None
    return rows[0] if rows else None


def incomplete(sweep_path: Path, job: Job) -> list[str]:
    """What is wrong with the files ``REQUIRED_FILES`` names for the job's stage, one phrase per file ([] when
    nothing is): missing, or not as its manifest.json records them (size, sha256); in a folder written before
    manifests, missing or empty (``harness.store.manifest.check_manifest``)."""
    return check_manifest(run_dir(sweep_path, job.id), REQUIRED_FILES[job.stage])


def disk_state(sweep_path: Path, job: Job) -> State:
    """The job's state as its folder says: its summary's status, or missing (no summary, or an ok one whose
    folder is ``incomplete``: it reruns)."""
    summary = read_summary(run_dir(sweep_path, job.id))
    if summary is None:
        return State.MISSING
    state = State(summary["status"])
    return State.MISSING if state is State.OK and incomplete(sweep_path, job) else state
