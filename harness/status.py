"""The state of a sweep read from its folders: counts per stage and state, and the failed jobs."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from harness.store import load_plan, read_summary, run_dir

STATES = ("ok", "running", "pending", "failed", "diverged", "blocked", "pruned", "cancelled", "timeout",
          "preempted", "missing")


def job_states(sweep_path: Path, queue: dict[str, str] | None = None) -> dict[str, tuple[str, str]]:
    """Job id -> (stage, state); a queue's view (Slurm) fills in jobs with no result on disk."""
    out = {}
    for job in load_plan(sweep_path):
        summary = read_summary(run_dir(sweep_path, job["id"]))
        state = summary["status"] if summary is not None else "missing"
        if queue and job["id"] in queue:  # the queue's view already gives a disk ok precedence
            state = queue[job["id"]]
        out[job["id"]] = (job["stage"], state)
    return out


def status_table(sweep_path: Path, queue: dict[str, str] | None = None) -> str:
    """A table of counts per stage and state, then each failed job with the last line of its error."""
    states = job_states(sweep_path, queue)
    counts = Counter(states.values())
    present = [s for s in STATES if any(st == s for _, st in counts)]
    lines = [f"sweep {sweep_path.name}: {len(states)} jobs", f"{'stage':10s}" + "".join(f"{s:>10s}" for s in present)]
    for stage in ("pretrain", "finetune", "scratch", "zeroshot"):
        if any(st == stage for st, _ in counts):
            lines.append(f"{stage:10s}" + "".join(f"{counts[(stage, s)]:>10d}" for s in present))
    bad = [(jid, st) for jid, (_, st) in states.items() if st in ("failed", "diverged", "blocked")]
    for jid, st in bad:
        error = str((read_summary(run_dir(sweep_path, jid)) or {}).get("error") or "").strip().splitlines()
        lines.append(f"  {jid} {st}: {error[-1] if error else ''}"[:300])
    return "\n".join(lines)
