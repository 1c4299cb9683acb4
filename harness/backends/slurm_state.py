"""The Slurm backend's view of a sweep: what was submitted, what Slurm says about it, what is on disk.

```
results/<sweep>/slurm/submitted.json   harness job id -> Slurm id ("123_4", or "123" for a lone job),
                                       written atomically, only after sbatch accepted the array
```
`query` turns that record into one state per job with a single `sacct` call per refresh (plus one `squeue`
only for ids accounting has no record of), merged with the run folders: a summary that says done (ok, pruned)
always wins, and a job Slurm requeued (preempted, timed out) is pending again, never done. What a new
`harness submit` sends is `harness.backends.select.select` of these states. Parsing and merging are pure
functions so they are tested without a cluster.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness.backends.select import Readiness, disk_states, readiness
from harness.errors import BackendError
from harness.job import Job
from harness.store import State
from harness.store.folders import load_plan, write_json_atomic

# sacct/squeue state -> harness state. COMPLETED (None) only says the process exited 0: the run folder decides.
SLURM_STATES: dict[str, State | None] = {
    **dict.fromkeys(("PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD", "SUSPENDED",
                     "STOPPED", "SPECIAL_EXIT"), State.PENDING),
    **dict.fromkeys(("RUNNING", "COMPLETING", "CONFIGURING", "SIGNALING", "STAGE_OUT", "RESIZING"), State.RUNNING),
    "COMPLETED": None,
    "CANCELLED": State.CANCELLED,
    **dict.fromkeys(("TIMEOUT", "DEADLINE"), State.TIMEOUT),
    "PREEMPTED": State.PREEMPTED,
    **dict.fromkeys(("FAILED", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL"), State.FAILED),
}


@dataclass(frozen=True)
class SacctRecord:
    """One line of `sacct -X -P -o JobID,State,Start,End`, for one array task or lone job."""

    state: State | None  # SLURM_STATES: None for COMPLETED (exited 0; the run folder says how it went)
    start: str
    end: str


def run_cmd(cmd: list[str], fix: str) -> str:
    """Run a Slurm client command and return its stdout; a failure is one BackendError line with `fix`."""
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        raise BackendError(f"`{cmd[0]}` is not on PATH: the slurm backend needs the Slurm client tools; "
                           "run on a Slurm login node or use --backend local") from None
    except subprocess.TimeoutExpired:
        raise BackendError(f"`{' '.join(cmd[:2])}` did not answer in 120 s; {fix}") from None
    if out.returncode:
        err = " ".join(out.stderr.split()) or f"exit status {out.returncode}"
        raise BackendError(f"`{' '.join(cmd[:2])}` failed: {err}; {fix}")
    return out.stdout


def _expand_tasks(array_id: str, spec: str) -> list[str]:
    """'123', '0-3%2' -> ['123_0', ..., '123_3']; also '1,4-5' (a throttle suffix `%N` is ignored)."""
    ids: list[str] = []
    for part in spec.split("%")[0].split(","):
        lo, _, hi = part.partition("-")
        ids += [f"{array_id}_{i}" for i in range(int(lo), int(hi or lo) + 1)]
    return ids


def parse_sacct(text: str) -> dict[str, SacctRecord]:
    """Slurm id -> record from `sacct -X -n -P -o JobID,State,Start,End` output.

    Pending array tasks appear folded ("123_[0-3%2]") and are unfolded; states like "CANCELLED by 0" keep
    their first word; unknown states read as failed (never as done).
    """
    records: dict[str, SacctRecord] = {}
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) < 4 or not fields[0]:
            continue
        jid, raw, start, end = fields[:4]
        record = SacctRecord(SLURM_STATES.get(raw.split()[0] if raw else "", State.FAILED), start, end)
        folded = re.fullmatch(r"(\d+)_\[([0-9,\-%]+)\]", jid)
        for sid in _expand_tasks(*folded.groups()) if folded else [jid]:
            records[sid] = record
    return records


def parse_squeue(text: str) -> dict[str, SacctRecord]:
    """Slurm id -> record from `squeue -h -r -t all -o %i|%T` output (no times)."""
    return parse_sacct("\n".join(f"{line.strip()}||" for line in text.splitlines() if line.strip()))


def merge_state(record: SacctRecord | None, disk: State) -> State:
    """One job's state from Slurm's record (None: never submitted / unknown to Slurm) and its run folder's."""
    if disk.is_done() or record is None:
        return disk
    if record.state is None:  # COMPLETED, exited 0: the summary says how it went; none at all means it broke
        return disk if disk.is_terminal() else State.FAILED
    return record.state


def merge_states(jobs: list[Job], submitted: dict[str, str], slurm: dict[str, SacctRecord],
                 disk: dict[str, State]) -> dict[str, State]:
    """Job id -> pending | running | ok | pruned | failed | diverged | cancelled | timeout | preempted | blocked |
    missing.

    A job still pending behind a pretraining job that can no longer succeed (``readiness``) is blocked (Slurm would
    hold it forever as DependencyNeverSatisfied unless the cluster kills such jobs).
    """
    states: dict[str, State] = {}
    for job in jobs:  # pretraining first, so a dependency's state is known before its dependants
        state = merge_state(slurm.get(submitted.get(job.id, "")), disk[job.id])
        # a pretraining outside ``jobs`` (a query of some jobs only) is not this query's to judge
        if state is State.PENDING and readiness(job, states, absent=State.OK) is Readiness.BLOCKED:
            state = State.BLOCKED
        states[job.id] = state
    return states


def slurm_dir(sweep_dir: Path) -> Path:
    """The sweep's Slurm folder: submitted.json, code.json, code/<hash>/, logs/."""
    return Path(sweep_dir) / "slurm"


def read_submitted(sweep_dir: Path) -> dict[str, str]:
    """Job id -> Slurm id of every job this sweep sent to Slurm (latest submission wins)."""
    path = slurm_dir(sweep_dir) / "submitted.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def record_submitted(sweep_dir: Path, ids: dict[str, str]) -> None:
    """Add job id -> Slurm id pairs to submitted.json (atomic rewrite)."""
    write_json_atomic(slurm_dir(sweep_dir) / "submitted.json", {**read_submitted(sweep_dir), **ids})


def slurm_records(slurm_ids: set[str]) -> dict[str, SacctRecord]:
    """One sacct call for these ids (by array), plus one squeue call for ids accounting does not know yet."""
    if not slurm_ids:
        return {}
    arrays = sorted({sid.split("_")[0] for sid in slurm_ids})
    fix = "check that slurmdbd (accounting) is up: `sacct` must answer"
    records = parse_sacct(run_cmd(["sacct", "-X", "-n", "-P", "-o", "JobID,State,Start,End",
                                   "-j", ",".join(arrays)], fix))
    if slurm_ids - set(records):  # slurmctld still knows jobs that ended in the last MinJobAge seconds
        recent = parse_squeue(run_cmd(["squeue", "-h", "-r", "-t", "all", "-o", "%i|%T"],
                                      "check that slurmctld is up"))
        records.update({sid: recent[sid] for sid in slurm_ids - set(records) if sid in recent})
    for sid in slurm_ids - set(records):
        array = sid.split("_")[0]
        if array in records:  # an array that ended before any task started has one record: "123"
            records[sid] = records[array]
        elif any(k.startswith(f"{array}_") for k in records):
            # a task scancelled while still pending is dropped from its array without a record of its own
            records[sid] = SacctRecord(State.CANCELLED, "", "")
    return records


def sweep_states(sweep_dir: Path, jobs: list[Job] | None = None
                 ) -> tuple[dict[str, State], dict[str, str], dict[str, SacctRecord]]:
    """(merged state per job, submitted record, raw Slurm records) for `jobs` (default: the sweep's plan)."""
    jobs = load_plan(sweep_dir) if jobs is None else jobs
    submitted = read_submitted(sweep_dir)
    records = slurm_records({submitted[j.id] for j in jobs if j.id in submitted})
    return merge_states(jobs, submitted, records, disk_states(sweep_dir, jobs)), submitted, records


def query(sweep_dir: Path, jobs: list[Job] | None = None) -> dict[str, State]:
    """Job id -> state for ``jobs`` (default: every job of the sweep): one sacct call merged with the run folders.

    A job scancelled before it ever started can read missing for a moment, until accounting records it.
    """
    return sweep_states(sweep_dir, jobs)[0]
