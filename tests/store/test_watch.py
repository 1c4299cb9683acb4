"""Live views: `harness status --watch` on a running local sweep and on a job running on the real Slurm cluster
(refreshes that show the running job's step and ETA; one `sacct` call per refresh), and the local submit's
progress bar."""

from __future__ import annotations

import io
import os
import re
import shutil
import signal
from pathlib import Path

import pytest

from harness.job.hooks import HOLD_ENV
from harness.store.progress import Progress
from tests.helpers import TINY, cli, harness, start_harness, wait_for_line, workers, write_sweep
from tests.slurm_util import wait_for

WATCHED = {**TINY, "name": "watched", "matrix": {"downstream.n_train": [8], "init": ["scratch"]}}


@pytest.mark.slow
def test_status_watch_shows_the_running_job_refresh_after_refresh(tmp_path: Path) -> None:
    root = tmp_path / "results"
    cli(root, "expand", str(write_sweep(tmp_path, WATCHED, train={"steps": 4, "eval_every": 2, "epochs": 1})))
    submit = start_harness(root, "submit", "--workers", "1", env={HOLD_ENV: "2"})
    try:
        wait_for_line(submit, "holding at step 2")
        out = cli(root, "status", "--watch", "--interval", "0.2", "--refreshes", "2")
    finally:
        for pid in workers(submit.pid):
            os.kill(pid, signal.SIGKILL)
        submit.kill()
        submit.wait()
    _assert_two_refreshes_of_the_held_job(out)


def _assert_two_refreshes_of_the_held_job(out: str) -> None:
    blocks = re.split(r"^-- \d\d:\d\d:\d\d \(every 0.2 s; Ctrl-C stops\)$", out, flags=re.M)
    assert len(blocks) == 3 and blocks[0] == "", out
    for block in blocks[1:]:
        assert "sweep watched: 1 jobs" in block
        assert re.search(r"sc-\w+ scratch   step 2/4  epoch 2\.00  eta \d+s  \(updated \d+s ago\)", block), block


@pytest.mark.slurm
def test_status_watch_on_slurm_shows_the_running_job_with_one_sacct_call_per_refresh(
        slurm_cluster: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "results"
    cli(root, "expand", str(write_sweep(tmp_path, WATCHED, train={"steps": 4, "eval_every": 2, "epochs": 1})))
    harness(root, "submit", "--backend", "slurm", "--gpus-per-node", "0", "--cpus", "1", env={HOLD_ENV: "2"})
    try:
        wait_for(lambda: "step 2/4" in cli(root, "status", "--watch", "--refreshes", "1"), 120,
                 "the Slurm job to hold at step 2", every=1)
        # the real sacct behind a wrapper that counts its calls
        calls, shim = tmp_path / "sacct-calls", tmp_path / "bin"
        shim.mkdir()
        (shim / "sacct").write_text(f"#!/bin/sh\necho \"$*\" >> {calls}\nexec {shutil.which('sacct')} \"$@\"\n")
        (shim / "sacct").chmod(0o755)
        monkeypatch.setenv("PATH", f"{shim}:{os.environ['PATH']}")
        out = cli(root, "status", "--watch", "--interval", "0.2", "--refreshes", "2")
        sacct_calls = calls.read_text().splitlines()
    finally:
        harness(root, "cancel")
    _assert_two_refreshes_of_the_held_job(out)
    # Slurm's own word (sacct) that the job runs, in each refresh's table
    assert len(re.findall(r"^stage\s+running\nscratch\s+1$", out, flags=re.M)) == 2, out
    assert len(sacct_calls) == 2, sacct_calls


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_submit_progress_is_a_bar_on_a_terminal_and_plain_lines_otherwise() -> None:
    for stream in (_Terminal(), io.StringIO()):
        progress = Progress(total=3, stream=stream)
        progress.done, progress.running = 1, 1
        progress.show("sc-1 ok")
        progress.failed, progress.running = 1, 0
        progress.show("sc-2 failed: boom")
        progress.close()
        out = stream.getvalue()
        if isinstance(stream, _Terminal):
            assert "sc-2 failed: boom\n" in out and "sc-1 ok" not in out  # failures stay above the bar
            assert re.search(r" 67%\|[^|]*\| 2/3 \[\d\d:\d\d<\d\d:\d\d\] ok 1  running 0  failed 1", out), out
        else:
            assert "\r" not in out and "\x1b" not in out
            assert out.splitlines()[-1].startswith("[2/3] ok 1  running 0  failed 1  elapsed 0s  eta ")
            assert out.splitlines()[-1].endswith("sc-2 failed: boom")
