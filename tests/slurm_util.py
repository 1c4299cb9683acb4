"""Helpers for the tests that drive the real single-node Slurm started by `.ci/slurm-up.sh`.

The cluster is found through SLURM_CONF, else the env file slurm-up.sh writes
($HARNESS_SLURM_DIR/env, default /tmp/harness-slurm/env); tests using the `slurm_cluster` fixture (conftest)
are skipped with the reason when neither gives a cluster that answers `sinfo`.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import harness
from harness.backends.slurm_state import SacctRecord, parse_sacct, query
from harness.job import Job
from harness.store.folders import load_plan
from harness.train.checkpoint import load as load_ckpt

ENV_FILE = Path(os.environ.get("HARNESS_SLURM_DIR", "/tmp/harness-slurm")) / "env"


def find_cluster() -> tuple[str | None, str]:
    """(SLURM_CONF of a cluster that answers, "") or (None, why there is none)."""
    conf = os.environ.get("SLURM_CONF")
    if not conf and ENV_FILE.is_file():
        found = re.search(r"SLURM_CONF=(\S+)", ENV_FILE.read_text())
        conf = found.group(1) if found else None
    if not conf:
        return None, f"no Slurm cluster: SLURM_CONF is unset and {ENV_FILE} is missing (run .ci/slurm-up.sh)"
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=10,
                             env={**os.environ, "SLURM_CONF": conf})
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"no Slurm cluster: sinfo does not answer ({exc}); run .ci/slurm-up.sh"
    if out.returncode or not out.stdout.strip():
        return None, f"no Slurm cluster at {conf}: sinfo says {out.stderr.strip()!r}; run .ci/slurm-up.sh"
    return conf, ""


def empty_test_queue(conf: str, timeout: float = 60) -> None:
    """Cancel every job on the private test cluster (never on another one) and wait for the queue to drain.

    Jobs left by an interrupted or failed test would otherwise hold the node's two CPUs and starve the
    next test's jobs until its timeout.
    """
    if not Path(conf).resolve().is_relative_to(ENV_FILE.parent.resolve()):
        return
    env = {**os.environ, "SLURM_CONF": conf}
    subprocess.run(["scancel", "--user", str(os.getuid())], env=env, capture_output=True, timeout=30)
    deadline = time.time() + timeout
    while time.time() < deadline:
        out = subprocess.run(["squeue", "-h", "-o", "%i"], env=env, capture_output=True, text=True, timeout=30)
        if out.returncode == 0 and not out.stdout.strip():
            return
        time.sleep(0.5)


def expand(sweep_file: Path, root: Path) -> tuple[Path, list[Job]]:
    """Expand a sweep file as `harness expand` does; returns (sweep folder, jobs)."""
    plan = harness.expand(sweep_file, root)
    assert load_plan(plan.folder) == plan.jobs
    return plan.folder, plan.jobs


def wait_for(check: Callable[[], Any], timeout: float, what: str, every: float = 1.0) -> Any:
    """Poll `check` until it returns something truthy (returned); fail the test after `timeout` seconds."""
    deadline = time.time() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.time() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def wait_settled(sweep_dir: Path, timeout: float = 150) -> dict[str, str]:
    """Poll `query` until no job of the sweep is pending or running; returns the final states."""
    def settled() -> dict[str, str] | None:
        states = query(sweep_dir)
        return None if any(s in ("pending", "running") for s in states.values()) else states

    return wait_for(settled, timeout, f"the jobs of {sweep_dir.name} to finish", every=2)


def sacct(*slurm_ids: str, duplicates: bool = False) -> dict[str, SacctRecord] | str:
    """Parsed `sacct -X` records for these ids (`duplicates`: the raw text of every run, requeues included)."""
    cmd = ["sacct", "-X", "-n", "-P", "-o", "JobID,State,Start,End", "-j", ",".join(slurm_ids)]
    out = subprocess.run(cmd + (["-D"] if duplicates else []), capture_output=True, text=True, check=True).stdout
    return out if duplicates else parse_sacct(out)


def ckpt_rows(path: Path) -> list[dict[str, float]]:
    """The evaluation rows in the checkpoint at ``path`` ([] before one is written)."""
    try:
        return load_ckpt(path)["loop"]["rows"]
    except Exception:  # not written yet
        return []


def job_pid(slurm_id: str) -> int | None:
    """Pid of the Python process running Slurm task `slurm_id` ("12_3" or "12"), read from /proc."""
    array, _, task = slurm_id.partition("_")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            env = dict(kv.split(b"=", 1) for kv in (proc / "environ").read_bytes().split(b"\0") if b"=" in kv)
        except OSError:  # gone, or not ours to read
            continue
        if b"submitit.core._submit" not in argv or not Path(argv[0].decode()).name.startswith("python"):
            continue
        ids = (env.get(b"SLURM_ARRAY_JOB_ID", b"").decode(), env.get(b"SLURM_ARRAY_TASK_ID", b"").decode())
        if ids == (array, task) or (not task and env.get(b"SLURM_JOB_ID", b"").decode() == array):
            return int(proc.name)
    return None


def release_requeued(slurm_id: str, timeout: float = 60) -> None:
    """Start a requeued job now: Slurm holds one for two minutes (BeginTime) after `scontrol requeue`.

    Not in the second its last run ended, though: slurmd refuses a launch whose credential is from the second in
    which the last run's credential was revoked ("Job credential revoked"), and the job then fails for good.
    """
    def state() -> str:
        out = subprocess.run(["squeue", "-h", "-j", slurm_id, "-o", "%T"], capture_output=True, text=True)
        return out.stdout.strip()

    wait_for(lambda: state() == "PENDING", timeout, f"requeued job {slurm_id} to be pending", every=0.2)
    time.sleep(1.1)

    def started() -> bool:
        if (current := state()) == "PENDING":
            subprocess.run(["scontrol", "update", f"JobId={slurm_id}", "StartTime=now"], capture_output=True)
        return current not in ("PENDING", "COMPLETING", "REQUEUED")

    wait_for(started, timeout, f"requeued job {slurm_id} to start again", every=0.5)
