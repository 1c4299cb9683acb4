"""The store: the one atomic writer, the plan, the summary row schema, and job states read from the folders."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pandas as pd
import pytest

from harness.errors import HarnessError
from harness.job import Downstream, Job, JobConfig, Model
from harness.store import Stage, State
from harness.store.atomic import write_atomic, write_json_atomic
from harness.store.folders import (
    METRIC_DEFAULTS,
    disk_state,
    incomplete,
    load_plan,
    read_plan,
    read_summary,
    record_blocked,
    run_dir,
    write_parquet_atomic,
    write_plan,
    write_summary,
)
from harness.store.manifest import MANIFEST, check_manifest, check_recorded, write_manifest

JOB = Job("ft-0123456789", "finetune", "s", JobConfig(16, 0, Model(width=4, modes=2),
                                                     downstream=Downstream(shift=[1.0, 5.0])),
          depends_on="pt-0123456789")


class Interrupted(BaseException):
    """Stands for a writer killed mid-write (KeyboardInterrupt, SystemExit)."""


@pytest.mark.parametrize("error", [ValueError, Interrupted])
def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path, error: type) -> None:
    path = tmp_path / "deep" / "f.json"
    write_json_atomic(path, {"a": 1})

    def half(fh) -> None:
        fh.write(b'{"a": ')
        raise error

    with pytest.raises(error):
        write_atomic(path, half)
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in path.parent.iterdir()] == ["f.json"]


def test_the_plan_is_written_and_read_by_the_store(tmp_path: Path) -> None:
    folder = write_plan(tmp_path, "s", {"name": "s"}, "s.yaml", [JOB])
    assert (tmp_path / ".current").read_text() == "s\n"
    assert read_plan(folder).spec == {"name": "s"} and load_plan(folder) == [JOB]
    assert pd.read_parquet(folder / "jobs.parquet")["downstream.shift"].tolist() == ["[1.0, 5.0]"]
    assert read_plan(tmp_path / "none", missing_ok=True) is None
    with pytest.raises(HarnessError, match=re.escape("plan.json: no plan; run `harness expand SWEEP.yaml` first")):
        read_plan(tmp_path / "none")
    (folder / "plan.json").write_text("{")
    with pytest.raises(HarnessError, match="unreadable plan .*; run `harness expand SWEEP.yaml` again"):
        load_plan(folder)


def test_a_summary_row_holds_config_columns_metrics_defaults_and_provenance(tmp_path: Path) -> None:
    assert disk_state(tmp_path, JOB) is State.MISSING
    row = write_summary(tmp_path, JOB, {"status": State.OK, "test_rel_l2": 0.5, "best_val_rel_l2": 0.4}, wall_s=2.0,
                        device="cpu")
    assert read_summary(run_dir(tmp_path, JOB.id)) == pytest.approx(row, nan_ok=True)
    assert row["init"] == "pretrained" and row["model.width"] == 4 and row["downstream.shift"] == "[1.0, 5.0]"
    assert row["status"] == "ok" and row["test_rel_l2"] == 0.5 and row["epochs_run"] == METRIC_DEFAULTS["epochs_run"]
    assert {"torch_version", "harness_version", "git_rev"} <= set(row) and row["git_rev"]
    assert disk_state(tmp_path, JOB) is State.MISSING  # ok, but incomplete without its epochs file: it reruns
    write_parquet_atomic(run_dir(tmp_path, JOB.id) / "epochs.parquet", [{"step": 0, "val_rel_l2": 0.4}])
    assert incomplete(tmp_path, JOB) == ["epochs.parquet is not in manifest.json"]  # it came after the ok summary
    write_summary(tmp_path, JOB, {"status": State.OK, "test_rel_l2": 0.5, "best_val_rel_l2": 0.4})
    assert disk_state(tmp_path, JOB) is State.OK
    blocked = record_blocked(tmp_path, JOB, State.DIVERGED)
    assert blocked["status"] == "blocked" and "pretraining job pt-0123456789 is diverged" in blocked["error"]
    with pytest.raises(ValueError):
        write_summary(tmp_path, JOB, {"status": "finished"})  # not a state


def test_states_say_what_a_submit_does_with_them() -> None:
    rerun = {s for s in State if s.needs_run()}
    assert rerun == {State.FAILED, State.BLOCKED, State.CANCELLED, State.TIMEOUT, State.PREEMPTED, State.MISSING}
    assert {s for s in State if s.needs_run(retry_failed=True)} == rerun | {State.DIVERGED}
    assert {s for s in State if s.is_done()} == {State.OK, State.PRUNED}
    assert {s for s in State if not s.is_terminal()} == {State.PENDING, State.RUNNING, State.MISSING}
    assert State("pruned") is State.PRUNED and State.OK == "ok" and {"ok": 1}[State.OK] == 1
    assert [s.prefix for s in Stage] == ["pt", "ft", "sc", "zs"] and Stage.of_init("pretrained") is Stage.FINETUNE


def test_written_files_get_the_permissions_of_a_plain_write(tmp_path: Path) -> None:
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    written = write_atomic(tmp_path / "atomic.txt", lambda fh: fh.write(b"x"))
    assert written.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777  # not mkstemp's 0600


def test_the_manifest_catches_truncated_altered_and_missing_files_and_hashes_only_changed_ones(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    data = bytes(range(256)) * 64
    write_atomic(folder / "ckpt" / "best.pt", lambda fh: fh.write(data))
    write_manifest(folder, ("ckpt/best.pt", "stats.json"))  # stats.json absent: not recorded
    names = ("ckpt/best.pt",)
    assert check_manifest(folder, names) == []
    assert check_manifest(folder, ("ckpt/best.pt", "stats.json")) == ["stats.json is missing"]
    assert check_recorded(folder) == []  # the report's check: only what the job recorded
    best = folder / "ckpt" / "best.pt"
    stamp = best.stat().st_mtime_ns
    os.utime(best, ns=(stamp + 10**9, stamp + 10**9))  # touched (a copy that kept nothing): same content
    assert check_manifest(folder, names) == []
    assert json.loads((folder / MANIFEST).read_text())["files"]["ckpt/best.pt"]["mtime_ns"] == stamp + 10**9
    best.write_bytes(data[:-1] + b"x")  # same size, other content
    assert check_manifest(folder, names) == ["ckpt/best.pt was altered (its sha256 is not the one in manifest.json)"]
    best.write_bytes(data[:100])
    assert check_manifest(folder, names) == [f"ckpt/best.pt has 100 bytes, manifest.json says {len(data)}"]
    assert check_recorded(folder) == check_manifest(folder, names)
    (folder / MANIFEST).write_text("{")
    assert check_manifest(folder, names)[0].startswith("manifest.json is unreadable")
    (folder / MANIFEST).unlink()  # a folder written before manifests: present and not empty is enough
    assert check_manifest(folder, names) == [] and check_recorded(folder) == []
    best.write_bytes(b"")
    assert check_manifest(folder, names) == ["ckpt/best.pt is empty"]
