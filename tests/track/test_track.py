"""Experiment trackers: a tiny sweep with TensorBoard, MLflow and W&B (offline) runs with no network, each
tracker's own reader finds every evaluation, and a missing or broken tracker costs one warning, not a result."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.store.folders import run_dir
from tests.helpers import TINY, cli, harness, results, write_sweep
from tests.track.test_track_cli import tensorboard_scalars  # skips the module without the tensorboard extra

pytestmark = pytest.mark.slow
mlflow_client = pytest.importorskip("mlflow.tracking", reason="the mlflow extra is not installed")
wandb_proto = pytest.importorskip("wandb.proto.wandb_internal_pb2", reason="the wandb extra is not installed")

TRACKED = {**TINY, "name": "tracked", "track": ["tensorboard", "mlflow", "wandb"],
           "matrix": {"downstream.n_train": [8], "init": ["pretrained", "scratch"]}}
STEPS = {"pretrain": {"train": {"steps": 6, "eval_every": 2, "epochs": 1}},
         "train": {"steps": 4, "eval_every": 2, "epochs": 1}}
# No credentials (HOME is the test's folder: no netrc), and any network call would fail.
OFFLINE = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}


def _run(folder: Path, env: dict[str, str], *backend: str) -> tuple[Path, str]:
    root = folder / "results"
    folder.mkdir(exist_ok=True)
    cli(root, "expand", str(write_sweep(folder, TRACKED, **STEPS)))
    proc = harness(root, "submit", *backend, env={**OFFLINE, "HOME": str(folder), **env})
    return root, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def tracked(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    # inline with the threads of one of two local workers, so the local run below gives the same results
    return _run(tmp_path_factory.mktemp("tracked"), {}, "--backend", "inline", "--workers", "2")


def _evaluations(root: Path, job_id: str) -> pd.DataFrame:
    return pd.read_parquet(run_dir(root / "tracked", job_id) / "epochs.parquet")


def _wandb_records(path: Path) -> list[bytes]:
    """The records of a W&B run file: a 7-byte header (":W&B", magic, version), then a LevelDB log (32 KiB blocks
    of chunks, each with a 7-byte header: CRC, length, type FULL 1 / FIRST 2 / MIDDLE 3 / LAST 4)."""
    data = path.read_bytes()
    assert data[:4] == b":W&B"
    records, pending, pos = [], b"", 7
    while pos + 7 <= len(data):
        room = 32768 - pos % 32768
        if room < 7:  # block trailer padding
            pos += room
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if kind == 0 and length == 0:
            break
        pending += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            records.append(pending)
            pending = b""
    return records


def _wandb_history(folder: Path) -> list[dict[str, float]]:
    (path,) = folder.glob("wandb/offline-run-*/run-*.wandb")
    rows = []
    for data in _wandb_records(path):
        record = wandb_proto.Record()
        record.ParseFromString(data)
        if record.WhichOneof("record_type") == "history":
            rows.append({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                         for item in record.history.item})
    return rows


def test_each_tracker_reads_back_every_evaluation(tracked: tuple[Path, str], monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow's file store reader (a job sets it itself)
    root, out = tracked
    table = results(root, "tracked")
    assert (table["status"] == "ok").all() and len(table) == 3, out
    assert "tracker" not in out  # no warning: every tracker worked
    client = mlflow_client.MlflowClient(tracking_uri=(root / "tracked" / "mlruns").resolve().as_uri())
    (experiment,) = [e for e in client.search_experiments() if e.name == "tracked"]
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    assert set(runs) == set(table["id"])
    for job in table.itertuples():
        rows = _evaluations(root, job.id)
        folder = run_dir(root / "tracked", job.id)
        steps, val = rows["step"].tolist(), rows["val_rel_l2"].to_numpy()
        assert len(steps) >= 3
        scalars = tensorboard_scalars(folder)
        assert list(scalars["val_rel_l2"]) == steps
        np.testing.assert_allclose(list(scalars["val_rel_l2"].values()), val, rtol=1e-6)
        assert scalars["summary/test_rel_l2"][job.steps_run] == pytest.approx(job.test_rel_l2, rel=1e-6)
        run = runs[job.id]
        assert run.data.tags["stage"] == job.stage and run.info.status == "FINISHED"
        assert run.data.params["model.width"] == str(TINY["base"]["model"]["width"])
        history = client.get_metric_history(run.info.run_id, "val_rel_l2")
        assert [m.step for m in history] == steps
        np.testing.assert_allclose([m.value for m in history], val, rtol=1e-6)
        assert run.data.metrics["summary.test_rel_l2"] == pytest.approx(job.test_rel_l2, rel=1e-6)
        wandb_rows = _wandb_history(folder)
        assert [r["_step"] for r in wandb_rows] == steps
        np.testing.assert_allclose([r["val_rel_l2"] for r in wandb_rows], val, rtol=1e-6)


def test_a_missing_or_broken_tracker_gives_one_warning_and_the_same_results(
        tracked: tuple[Path, str], tmp_path: Path) -> None:
    shadow = tmp_path / "shadow"
    for name, error in (("mlflow", "ModuleNotFoundError(\"No module named 'mlflow'\")"),
                        ("wandb", "RuntimeError('broken for the test')")):
        (shadow / name).mkdir(parents=True)
        (shadow / name / "__init__.py").write_text(f"raise {error}\n")
    # two worker processes, each meeting the broken trackers: still one warning per tracker
    root, out = _run(tmp_path / "sweep", {"PYTHONPATH": f"{shadow}:{Path(__file__).resolve().parents[2]}"},
                     "--workers", "2")
    first, again = results(tracked[0], "tracked"), results(root, "tracked")
    assert again["id"].tolist() == first["id"].tolist() and (again["status"] == "ok").all()
    np.testing.assert_allclose(again["test_rel_l2"], first["test_rel_l2"], rtol=1e-6)
    assert out.count("tracker mlflow is not installed or broken") == 1, out
    assert out.count("tracker wandb failed (RuntimeError: broken for the test)") == 1, out
    assert out.count("tracker") == 2, out
    assert tensorboard_scalars(run_dir(root / "tracked", again["id"][0]))["val_rel_l2"]  # the working one still logs


@pytest.mark.parametrize(("track", "message"), [
    (["tensorbord"], "track.tensorbord: unknown tracker 'tensorbord'; did you mean `tensorboard`?"),
    ({"wandb": {"mode": "cloud"}}, "track.wandb.mode (line"),
    ({"mlflow": {"uri": "x"}}, "mlflow has no option `uri`; valid keys: tracking_uri, experiment"),
])
def test_a_bad_track_block_is_refused_at_expand(tmp_path: Path, track: object, message: str) -> None:
    path = write_sweep(tmp_path, {**TINY, "track": track})
    result = CliRunner().invoke(main, ["expand", str(path), "--root", str(tmp_path / "results")])
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "results").exists()
