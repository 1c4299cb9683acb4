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
from pathlib import Path
from typing import Any

import pandas as pd

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


def collect(sweep_path: Path) -> pd.DataFrame:
    """Every job's summary row as one table, also written to <sweep>/results.parquet; unreadable files skipped.

    Tuned sweeps get a `tune.best` column marking each study's best trial on validation.
    """
    from harness.tune import best_trials

    rows = [s for f in sorted((Path(sweep_path) / "runs").glob("*/summary.parquet")) if (s := read_summary(f.parent))]
    table = best_trials(pd.DataFrame(rows)) if rows else pd.DataFrame(rows)
    write_parquet_atomic(Path(sweep_path) / "results.parquet", table)
    return table


def disk_state(sweep_path: Path, job: dict[str, Any]) -> str:
    """ok | failed | diverged | blocked | missing, read from the job's summary file."""
    summary = read_summary(run_dir(sweep_path, job["id"]))
    return "missing" if summary is None else str(summary["status"])
