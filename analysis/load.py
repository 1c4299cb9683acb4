"""Read a sweep's results folder (``plan.json`` + ``runs/*/summary.parquet``) into one typed DataFrame.

The fast path is one ``pyarrow.dataset`` over every summary file with a permissively unified schema (jobs of
different stages have different null columns); when it fails (a corrupt or truncated file) the files are read
one by one so the bad ones can be named and skipped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from pyarrow import fs

from harness.errors import HarnessError

STATUSES = ("ok", "failed", "diverged", "blocked")
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

    ``problems`` holds (job id, reason) for unreadable summary files and for rows whose status is not ok;
    ``missing`` the planned job ids without a summary file; ``planned`` the number of jobs in ``plan.json``.
    """

    all: pd.DataFrame
    ok: pd.DataFrame
    problems: list[tuple[str, str]]
    missing: list[str]
    unreadable: list[str]
    planned: int
    plan: dict | None

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

    Raises ReportError when the folder holds neither a plan nor any summary file.
    """
    sweep_dir = Path(sweep_dir)
    plan = _read_plan(sweep_dir / "plan.json")
    files = sorted(sweep_dir.glob("runs/*/summary.parquet"))
    if plan is None and not files:
        raise ReportError(f"no results under {sweep_dir}: run `harness submit` first")
    table, bad = _read_summaries(files)
    frame = _typed_frame(table)
    ids = set(frame["id"].dropna()) | {job for job, _ in bad}
    planned_ids = [job["id"] for job in plan.get("jobs", [])] if plan else []
    missing = [job for job in planned_ids if job not in ids]
    failed = frame[frame["status"] != "ok"]
    problems = list(bad) + [
        (str(job), f"{status}: {error}" if error else str(status))
        for job, status, error in zip(failed["id"], failed["status"], failed["error"].fillna(""), strict=True)
    ]
    ok = frame[frame["status"] == "ok"].reset_index(drop=True)
    return LoadedRuns(
        all=frame, ok=ok, problems=problems, missing=missing, unreadable=[job for job, _ in bad],
        planned=len(planned_ids) if plan else len(files), plan=plan,
    )  # fmt: skip


def _read_plan(path: Path) -> dict | None:
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ReportError(f"cannot read {path}: {exc}; rerun `harness submit` to rewrite it") from exc


def _read_summaries(files: list[Path]) -> tuple[pa.Table, list[tuple[str, str]]]:
    """All summary rows as one table, plus (job id, reason) for each file that could not be read."""
    if not files:
        return pa.table({}), []
    try:
        factory = ds.FileSystemDatasetFactory(
            fs.LocalFileSystem(), [str(f) for f in files], ds.ParquetFileFormat(), ds.FileSystemFactoryOptions()
        )
        schema = factory.inspect(promote_options="permissive")
        return factory.finish(schema).to_table(), []
    except (pa.ArrowException, OSError):
        pass  # a corrupt file somewhere: find it file by file
    tables, bad = [], []
    for f in files:
        try:
            tables.append(pq.read_table(f))
        except (pa.ArrowException, OSError) as exc:
            bad.append((f.parent.name, f"unreadable summary.parquet: {str(exc).splitlines()[0]}"))
    if not tables:
        return pa.table({}), bad
    return pa.concat_tables(tables, promote_options="permissive"), bad


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
