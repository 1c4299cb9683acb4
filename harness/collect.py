"""Results on disk: the sweep folder layout, atomic writes, and the state of each job read from its folder.

```
results/.current                  name of the current sweep (set by `harness expand`)
results/<sweep>/plan.json         the sweep definition and its jobs
results/<sweep>/jobs.parquet      the same jobs as a flat table
results/<sweep>/runs/<job_id>/    config.json, epochs.parquet, summary.parquet, ckpt/, error.txt
```
Each job's folder is its state: resume is a scan of folders, never a database that can drift from the files.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from pyarrow import fs

from harness.errors import HarnessError

DEFAULT_ROOT = Path("results")
DONE_STATES = ("ok",)


def _atomic(path: Path, write) -> None:
    """Write through `write(tmp_path)` to a temporary file beside `path`, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write `obj` as indented JSON, atomically."""
    _atomic(Path(path), lambda tmp: tmp.write_text(json.dumps(obj, indent=1, sort_keys=True, default=str)))


def write_text_atomic(path: Path, text: str) -> None:
    """Write a text file atomically."""
    _atomic(Path(path), lambda tmp: tmp.write_text(text))


def write_parquet_atomic(path: Path, rows: list[dict[str, Any]] | pd.DataFrame) -> None:
    """Write rows (or a DataFrame) as a Parquet file, atomically."""
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    _atomic(Path(path), lambda tmp: frame.to_parquet(tmp, index=False))


def sweep_dir(root: Path, name: str) -> Path:
    """The results folder of sweep `name`."""
    return Path(root) / name


def run_dir(sweep_path: Path, job_id: str) -> Path:
    """The folder one job writes to."""
    return Path(sweep_path) / "runs" / job_id


def write_plan(root: Path, name: str, spec: dict[str, Any], source: str, jobs: list[dict[str, Any]],
               table: list[dict[str, Any]]) -> Path:
    """Write plan.json and jobs.parquet for a sweep and make it the current sweep; returns the sweep folder."""
    folder = sweep_dir(root, name)
    write_json_atomic(folder / "plan.json", {"sweep": name, "source": source, "spec": spec, "jobs": jobs})
    write_parquet_atomic(folder / "jobs.parquet", table)
    write_text_atomic(Path(root) / ".current", name + "\n")
    return folder


def load_plan(sweep_path: Path) -> list[dict[str, Any]]:
    """The jobs of an expanded sweep (pretraining first)."""
    plan = Path(sweep_path) / "plan.json"
    if not plan.is_file():
        raise HarnessError(f"{plan}: no plan; run `harness expand SWEEP.yaml` first")
    try:
        return json.loads(plan.read_text())["jobs"]
    except (json.JSONDecodeError, KeyError) as exc:
        raise HarnessError(f"{plan}: unreadable plan ({exc}); run `harness expand SWEEP.yaml` again") from None


def resolve_sweep(root: Path, sweep: str | None) -> Path:
    """The folder of a sweep given by name, by its sweep file, or (None) the current sweep."""
    root = Path(root)
    if sweep is None:
        current = root / ".current"
        if not current.is_file():
            raise HarnessError(f"no current sweep under {root}; run `harness expand SWEEP.yaml` first")
        return sweep_dir(root, current.read_text().strip())
    if sweep.endswith((".yaml", ".yml")):
        from harness.sweep.spec import load_sweep  # only for the name: validation errors surface here too

        return sweep_dir(root, load_sweep(sweep).name)
    return sweep_dir(root, sweep)


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
    rewritten; a stat per file is all an unchanged sweep costs. ``must_write=False`` tolerates a read-only
    folder (the table is returned, the cache is not updated).
    """
    from harness.tune import best_trials

    sweep_path = Path(sweep_path)
    stats = _summary_stats(sweep_path / "runs")
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
        _atomic(sweep_path / RESULTS, lambda tmp: pq.write_table(out, tmp))
    except OSError:
        if must_write:
            raise
    return Collected(table, sorted(bad.items()), len(stats), len(keep))


def _summary_stats(runs: Path) -> dict[str, list[int]]:
    """Job folder name -> [mtime_ns, size, inode] of its summary.parquet (one stat per folder)."""
    out, root = {}, str(runs)
    try:
        entries = sorted(e.name for e in os.scandir(root) if e.is_dir())
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


def disk_state(sweep_path: Path, job: dict[str, Any]) -> str:
    """ok | failed | diverged | blocked | missing, read from the job's summary file."""
    summary = read_summary(run_dir(sweep_path, job["id"]))
    return "missing" if summary is None else str(summary["status"])
