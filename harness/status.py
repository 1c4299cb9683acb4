"""The state of a sweep as a table: counts per stage and state, and the jobs that ended badly with their error."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from harness.states import Stage, State
from harness.store import read_summary, run_dir

# Ended without a result a submit keeps: listed under the table with the last line of their error.
BAD = (State.FAILED, State.DIVERGED, State.BLOCKED)


def status_table(sweep_path: Path, jobs: list[dict[str, Any]], states: dict[str, State]) -> str:
    """Counts per stage and ``State`` (a backend's view, ``Backend.status``), then each failed, diverged or
    blocked job with the last line of its error."""
    counts = Counter((job["stage"], states.get(job["id"], State.MISSING)) for job in jobs)
    present = [s for s in State if any(st is s for _, st in counts)]
    lines = [f"sweep {Path(sweep_path).name}: {len(jobs)} jobs",
             f"{'stage':10s}" + "".join(f"{s.value:>10s}" for s in present)]
    for stage in Stage:
        if any(st == stage for st, _ in counts):
            lines.append(f"{stage.value:10s}" + "".join(f"{counts[(stage.value, s)]:>10d}" for s in present))
    for job in jobs:
        state = states.get(job["id"], State.MISSING)
        if state in BAD:
            error = str((read_summary(run_dir(sweep_path, job["id"])) or {}).get("error") or "").strip().splitlines()
            lines.append(f"  {job['id']} {state}: {error[-1] if error else ''}"[:300])
    return "\n".join(lines)
