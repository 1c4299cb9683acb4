"""Every summary row of a sweep as one table, incrementally: the one reader of ``runs/*/summary.parquet``.

``collect_table`` reuses ``results.parquet`` (its metadata records the files it was built from) for the summary
files that did not change and reads only the others; ``best_trials`` marks each tuning study's best trial.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from pyarrow import fs

from harness.store import State
from harness.store.atomic import write_atomic
from harness.store.folders import read_plan

RESULTS = "results.parquet"
_MANIFEST = b"harness.collect"  # results.parquet metadata: the summary files it was built from (see collect_table)


@dataclass(frozen=True)
class Collected:
    """Every readable summary row of a sweep (``table``, one Arrow table with a `tune.best` column when it has
    rows), (job folder, reason) per unreadable summary file, how many summary files there are, and how many
    of them were taken from results.parquet instead of being read again."""

    table: pa.Table
    unreadable: list[tuple[str, str]]
    files: int
    reused: int


def collect(sweep_path: Path) -> pd.DataFrame:
    """Every job's summary row as one table, also written to <sweep>/results.parquet; unreadable files skipped.

    Tuned sweeps get a `tune.best` column marking each study's best trial on validation.
    """
    return collect_table(sweep_path).table.to_pandas()


def collect_table(sweep_path: Path, *, must_write: bool = True) -> Collected:
    """The one reader of a sweep's ``runs/*/summary.parquet``, incremental through ``results.parquet``.

    results.parquet records (in its metadata) the (mtime, size, inode) of every summary file it was built
    from. Files whose stat still matches are taken from it; only new or changed files are read (one
    ``pyarrow.dataset`` over them with a permissively unified schema: jobs of different stages have different
    null columns; file by file when that fails, to name the corrupt ones). When anything changed the table is
    rewritten; a stat per file is all an unchanged sweep costs. Runs whose ids are not in the sweep's plan (stale
    runs) are left out. ``must_write=False`` tolerates a read-only
    folder (the table is returned, the cache is not updated).
    """
    sweep_path = Path(sweep_path)
    stats = _summary_stats(sweep_path / "runs")
    plan = read_plan(sweep_path, missing_ok=True)
    if plan is not None:  # stale runs (ids no longer in the plan, ``harness.store.stale``) stay out
        planned = {job.id for job in plan.jobs}
        stats = {name: st for name, st in stats.items() if name in planned}
    cached, manifest = _read_cache(sweep_path / RESULTS)
    old, old_bad = manifest.get("files", {}), manifest.get("unreadable", {})
    if cached is not None and set(old) == set(stats) and all(old[k][:3] == v for k, v in stats.items()):
        return Collected(cached, sorted(old_bad.items()), len(stats), len(stats))
    keep = {name for name, st in stats.items() if name in old and old[name][:3] == st}
    kept, kept_names = _reuse(cached, old, keep)
    if kept is None:  # no usable cache: read everything
        keep, kept_names = set(), np.array([], dtype=object)
    read, read_names, bad = _read_summaries(sweep_path / "runs", sorted(set(stats) - keep))
    bad |= {name: old_bad[name] for name in keep if name in old_bad}
    tables = [t for t in (kept, read) if t is not None and t.num_rows]
    table = pa.concat_tables(tables, promote_options="permissive") if tables else pa.table({})
    names = np.concatenate([kept_names, read_names]) if tables else np.array([], dtype=object)
    if table.num_rows:  # rows in job-folder order, however they were gathered
        table = table.take(pa.array(np.argsort(names, kind="stable")))
        names = np.sort(names, kind="stable")
    if "tune.best" in table.column_names:
        table = table.drop_columns(["tune.best"])
    if table.num_rows:
        needed = [c for c in ("tune.study", "status", "best_val_rel_l2") if c in table.column_names]
        best = best_trials(table.select(needed).to_pandas())["tune.best"].to_numpy(dtype=bool)
        table = table.append_column("tune.best", pa.array(best))
    counts = dict(zip(*np.unique(names, return_counts=True), strict=True)) if len(names) else {}
    files = {name: [*stats[name], int(counts.get(name, 0))] for name in sorted(stats)}
    meta = {"version": 1, "files": files, "unreadable": dict(sorted(bad.items()))}
    out = table.replace_schema_metadata({_MANIFEST: json.dumps(meta, separators=(",", ":")).encode()})
    try:
        write_atomic(sweep_path / RESULTS, lambda fh: pq.write_table(out, fh))
    except OSError:
        if must_write:
            raise
    return Collected(table, sorted(bad.items()), len(stats), len(keep))


def _summary_stats(runs: Path) -> dict[str, list[int]]:
    """Job folder name -> [mtime_ns, size, inode] of its summary.parquet (one stat per folder; a symbolic link
    in runs/ is not followed: what it points to may lie outside the results root)."""
    out, root = {}, str(runs)
    try:
        entries = sorted(e.name for e in os.scandir(root) if e.is_dir(follow_symlinks=False))
    except OSError:
        return out
    for name in entries:
        try:
            st = os.stat(os.path.join(root, name, "summary.parquet"))
        except OSError:
            continue
        out[name] = [st.st_mtime_ns, st.st_size, st.st_ino]
    return out


def _read_cache(path: Path) -> tuple[pa.Table | None, dict]:
    """results.parquet and its manifest; (None, {}) when absent, unreadable or written without a manifest."""
    try:
        table = pq.read_table(path)
        meta = json.loads((table.schema.metadata or {})[_MANIFEST])
    except (OSError, KeyError, ValueError, pa.ArrowException):
        return None, {}
    if meta.get("version") != 1 or not isinstance(meta.get("files"), dict):
        return None, {}
    return table.replace_schema_metadata(None), meta


def _reuse(cached: pa.Table | None, old: dict[str, list], keep: set[str]) -> tuple[pa.Table | None, np.ndarray]:
    """The cached rows of the ``keep`` files and their job-folder names; (None, _) when the cache is unusable."""
    if cached is None:
        return None, np.array([], dtype=object)
    order = sorted(old)
    per_row = np.repeat(np.array(order, dtype=object), [int(old[name][3]) for name in order])
    if len(per_row) != cached.num_rows:
        return None, per_row
    mask = np.fromiter((name in keep for name in per_row), bool, len(per_row))
    return cached.filter(pa.array(mask)), per_row[mask]


def _read_summaries(runs: Path, names: list[str]) -> tuple[pa.Table | None, np.ndarray, dict[str, str]]:
    """Read ``runs/<name>/summary.parquet`` for ``names``: (rows, the job folder of each row, unreadable).

    One pyarrow dataset over all the files with a permissively unified schema; file by file when that fails
    (a corrupt or truncated file), so the bad ones can be named and skipped.
    """
    if not names:
        return None, np.array([], dtype=object), {}
    files = [str(runs / name / "summary.parquet") for name in names]
    try:
        factory = ds.FileSystemDatasetFactory(
            fs.LocalFileSystem(), files, ds.ParquetFileFormat(), ds.FileSystemFactoryOptions()
        )
        dataset = factory.finish(factory.inspect(promote_options="permissive"))
        table = dataset.to_table(columns=[*dataset.schema.names, "__filename"])
    except (pa.ArrowException, OSError):
        pass  # a corrupt file somewhere: find it file by file
    else:
        index = pc.index_in(table.column("__filename"), value_set=pa.array(files)).to_numpy(zero_copy_only=False)
        owner = np.array(names, dtype=object)[index.astype(int)]
        return table.drop_columns(["__filename"]).replace_schema_metadata(None), owner, {}
    tables, owners, bad = [], [], {}
    for name, f in zip(names, files, strict=True):
        try:
            t = pq.read_table(f).replace_schema_metadata(None)
        except (pa.ArrowException, OSError) as exc:
            bad[name] = f"unreadable summary.parquet: {str(exc).splitlines()[0]}"
            continue
        tables.append(t)
        owners += [name] * t.num_rows
    table = pa.concat_tables(tables, promote_options="permissive") if tables else None
    return table, np.array(owners, dtype=object), bad


def best_trials(table: pd.DataFrame) -> pd.DataFrame:
    """Mark each study's best ok trial on validation (`tune.best`); untuned rows count as their own best."""
    table = table.copy()
    if "tune.study" not in table.columns:
        table["tune.best"] = True
        return table
    tuned = table["tune.study"].notna()
    ok = tuned & (table["status"] == State.OK)
    best_index = table[ok].groupby("tune.study")["best_val_rel_l2"].idxmin()
    table["tune.best"] = ~tuned
    table.loc[best_index.values, "tune.best"] = True
    return table
