"""A results folder that cannot be written (issue 16): a read-only one and a full one, each a small tmpfs.

Submit and report say so in one line naming the path; a full disk during a write leaves the previous file whole.
Mounting needs root; without it the tests are skipped.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from harness.store import State
from harness.store.folders import load_plan, write_summary
from tests.helpers import TINY, cli, harness, write_sweep

SPEC = {**TINY, "name": "disk", "matrix": {"init": ["scratch"], "downstream.n_train": [8, 16]}}


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs mounted at tmp_path/mnt for the test (skipped where mounting is not allowed)."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=True)


def test_a_full_disk_leaves_the_previous_plan_whole_and_says_so_in_one_line(tmp_path: Path, tmpfs: Path) -> None:
    root = tmpfs / "results"
    path = write_sweep(tmp_path, SPEC)
    cli(root, "expand", str(path))
    before = (root / "disk" / "plan.json").read_text()
    fd = os.open(tmpfs / "filler", os.O_WRONLY | os.O_CREAT)
    try:  # fill the disk to the last block
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    grown = yaml.safe_load(path.read_text())
    grown["matrix"]["downstream.n_train"] = list(range(8, 200))
    path.write_text(yaml.safe_dump(grown))
    out = harness(root, "expand", str(path), check=False)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "cannot write (No space left on device)" in out.stderr and str(root / "disk") in out.stderr
    assert (root / "disk" / "plan.json").read_text() == before and json.loads(before)["jobs"]
    assert not list(root.rglob("*.tmp"))


def test_submit_and_report_on_a_read_only_folder_say_so_in_one_line(tmp_path: Path, tmpfs: Path) -> None:
    root = tmpfs / "results"
    cli(root, "expand", str(write_sweep(tmp_path, SPEC)))
    for i, job in enumerate(load_plan(root / "disk")):  # two finished runs, so there is something to report
        write_summary(root / "disk", job, {"status": State.OK, "test_rel_l2": 0.5 / (i + 1),
                                           "best_val_rel_l2": 0.5 / (i + 1), "n_params": 100})
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    submit = harness(root, "submit", check=False)
    assert submit.returncode == 2 and "Traceback" not in submit.stderr
    assert f"{root / 'disk' / 'submit.lock'}: cannot write" in submit.stderr and "Read-only" in submit.stderr
    report = harness(root, "report", "--n-boot", "10", check=False)
    assert report.returncode == 2 and "Traceback" not in report.stderr
    assert "cannot write (Read-only file system)" in report.stderr and str(root / "disk") in report.stderr
