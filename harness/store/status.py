"""The state of a sweep as a table: counts per stage and state, and the jobs that ended badly with their error.

Exit statuses a script can trust (``harness.cli``): ``submit`` and ``status`` exit 1 when a job of the run (of
the sweep) is failed, diverged or blocked (``bad_line`` says which), 0 when every one is ok, pruned, queued,
running or not yet run; every command exits 2 on a user error (one line naming the file and the fix).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from harness.job import Job
from harness.store import Stage, State
from harness.store.folders import incomplete, read_summary, run_dir

# Ended without a result a submit keeps: listed under the table with the last line of their error.
BAD = (State.FAILED, State.DIVERGED, State.BLOCKED)


def status_table(sweep_path: Path, jobs: list[Job], states: dict[str, State]) -> str:
    """Counts per stage and ``State`` (a backend's view, ``Backend.status``), then each failed, diverged or
    blocked job with the last line of its error."""
    counts = Counter((job.stage, states.get(job.id, State.MISSING)) for job in jobs)
    present = [s for s in State if any(st is s for _, st in counts)]
    lines = [f"sweep {Path(sweep_path).name}: {len(jobs)} jobs",
             f"{'stage':10s}" + "".join(f"{s.value:>10s}" for s in present)]
    for stage in Stage:
        if any(st == stage for st, _ in counts):
            lines.append(f"{stage.value:10s}" + "".join(f"{counts[(stage.value, s)]:>10d}" for s in present))
    for job in jobs:
        state = states.get(job.id, State.MISSING)
        if state in BAD:
            error = str((read_summary(run_dir(sweep_path, job.id)) or {}).get("error") or "").strip().splitlines()
            lines.append(f"  {job.id} {state}: {error[-1] if error else ''}"[:300])
    return "\n".join(lines)


def incomplete_lines(sweep_path: Path, jobs: list[Job], states: dict[str, State]) -> list[str]:
    """One line per job whose summary says ok but whose files are not as its manifest records them (the store
    then calls it missing): the job, what is wrong, and what to do."""
    lines = []
    for job in jobs:
        if states.get(job.id, State.MISSING) is not State.MISSING:
            continue
        summary = read_summary(run_dir(sweep_path, job.id))
        if summary is not None and summary["status"] == State.OK and (problems := incomplete(sweep_path, job)):
            lines.append(f"  {job.id} incomplete: {'; '.join(problems)}; `harness submit` reruns it (from its "
                         "checkpoint when it has one)")
    return lines


def bad_line(states: dict[str, State], shown: int = 5) -> str:
    """One line naming the jobs that ended failed, diverged or blocked ("" when none did)."""
    bad = {s: sorted(jid for jid, st in states.items() if st == s) for s in BAD}
    parts = [f"{len(ids)} {s} ({', '.join(ids[:shown])}{', ...' if len(ids) > shown else ''})"
             for s, ids in bad.items() if ids]
    return "not ok: " + "; ".join(parts) if parts else ""
