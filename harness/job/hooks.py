"""Test hooks: every environment variable a test sets to steer a job, read here and nowhere else.

Each is inert unless set. ``HARNESS_HOLD_AT_STEP=k`` (every job) or ``=JOB_ID:k`` (that job only) makes a job
wait after its evaluation at optimiser step k (and the checkpoint written before it, when one is due), to be
killed or requeued: a kill-and-resume test needs no long run to find its window. A held job ends at once on
SIGTERM, as one stopped mid-step ends when its grace period runs out (torchrun waits 30 s for it, Slurm its
KillWait).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

HOLD_ENV = "HARNESS_HOLD_AT_STEP"


def hold_hook(job_id: str) -> Callable[[dict[str, Any]], None] | None:
    """The ``HOLD_ENV`` hook for this job: waits (until killed, at most an hour) after the evaluation at step k."""
    target, _, k = os.environ.get(HOLD_ENV, "").rpartition(":")
    if not k or target not in ("", job_id):
        return None

    def hold(row: dict[str, Any]) -> None:
        if row["step"] == int(k):
            print(f"harness: {job_id} holding at step {k} ({HOLD_ENV})", file=sys.stderr, flush=True)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            time.sleep(3600)

    return hold
