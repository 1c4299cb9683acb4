"""One sweep, one writer: OS file locks in the sweep folder, released by the kernel when their holder dies.

- ``submit.lock``: held (exclusive) by the ``harness submit`` that runs or queues the sweep's jobs; a second
  submit on the same sweep refuses in one line naming the holder (host, pid, since when) instead of running
  every job twice. The holder's name is written into the file (through the one atomic writer it would replace
  the locked inode, so it is written in place: it is a note, never read back as data).
- ``workers.lock``: held shared by each local worker process for its lifetime. A killed submit leaves its
  workers orphaned; they stop at their next step (``stop_with_parent``), and the next submit waits for their
  shared locks to go (``wait_for_orphans``) before it runs anything, so two generations never race on a job.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

from harness.errors import HarnessError

SUBMIT_LOCK = "submit.lock"
WORKERS_LOCK = "workers.lock"
ORPHAN_WAIT_S = 120.0  # how long a submit waits for a killed submit's workers to checkpoint and stop


class SweepBusy(HarnessError):
    """Another `harness submit` holds the sweep."""


def _open(path: Path) -> IO[str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return open(path, "a+")  # noqa: SIM115 (held for the lock's lifetime)
    except OSError as exc:
        raise HarnessError(f"{path}: cannot write the sweep's lock file ({exc.strerror}); the results folder must "
                           "be writable (check its permissions and free space, or pass another --root)") from None


@contextlib.contextmanager
def submit_lock(sweep_path: Path) -> Iterator[None]:
    """Hold the sweep's submit lock for the block; raises ``SweepBusy`` naming the holder when it is taken."""
    path = Path(sweep_path) / SUBMIT_LOCK
    fh = _open(path)
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise SweepBusy(f"{sweep_path}: another `harness submit` is running this sweep ({holder}); wait for it "
                            "to end or stop it, then submit again") from None
        since = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        fh.seek(0)
        fh.truncate()
        fh.write(f"host {socket.gethostname()}, pid {os.getpid()}, since {since}\n")
        fh.flush()
        wait_for_orphans(sweep_path)
        yield
    finally:
        fh.close()  # closing the descriptor releases the lock


def wait_for_orphans(sweep_path: Path, timeout_s: float = ORPHAN_WAIT_S) -> None:
    """Wait until no worker of an earlier (killed) submit holds the sweep's workers lock."""
    fh = _open(Path(sweep_path) / WORKERS_LOCK)
    with fh:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise SweepBusy(f"{sweep_path}: workers of an earlier `harness submit` are still running after "
                                    f"{timeout_s:.0f}s; stop them (see `pgrep -f harness`) and submit again") from None
                time.sleep(0.2)


def hold_worker_lock(sweep_path: Path) -> IO[str]:
    """Take the workers lock shared for this worker process's lifetime; returns the open file (keep it)."""
    fh = _open(Path(sweep_path) / WORKERS_LOCK)
    fcntl.flock(fh, fcntl.LOCK_SH)
    return fh


def stop_with_parent(parent: int, poll_s: float = 1.0) -> None:
    """Have this process receive SIGTERM when its parent (pid ``parent``, which started it) dies (Linux:
    PR_SET_PDEATHSIG; else a thread watching the parent id). The training loop checkpoints on SIGTERM, then the
    process ends."""
    with contextlib.suppress(OSError, AttributeError):
        pr_set_pdeathsig = 1
        if ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM) == 0:
            if os.getppid() != parent:  # died before the request took effect
                os.kill(os.getpid(), signal.SIGTERM)
            return

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, daemon=True).start()
