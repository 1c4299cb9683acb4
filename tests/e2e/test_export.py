"""`harness export` and `harness.load_model`: a trained job as a folder that reproduces its test error in a fresh
process with the results folder gone, and every refusal one line, exit 2, nothing written."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from harness import api
from harness.cli import main
from harness.data.fingerprint import fingerprint
from harness.job.run import run_job

STEADY = {"name": "steady", "base": {
    "resolution": 16, "model": {"width": 8, "modes": 4},
    "pretrain": {"strategy": "masked", "mask_patches": 4, "n_train": 8, "n_val": 4, "n_test": 4,
                 "train": {"steps": 2, "batch_size": 8}},
    "downstream": {"n_train": 16, "n_val": 8, "n_test": 8}, "train": {"steps": 6, "lr": 3.0e-3, "batch_size": 8}},
    "matrix": {"init": ["scratch", "pretrained"]}}
NEXT_STEP = {"name": "forecast", "base": {
    "task": "next_step", "resolution": 16, "nt": 6, "time_window": 2, "model": {"width": 6, "modes": 4},
    "downstream": {"system": "heat", "n_train": 8, "n_val": 4, "n_test": 6},
    "train": {"steps": 4, "lr": 3.0e-3, "batch_size": 4}}, "matrix": {"init": ["scratch"]}}

# Run in a fresh interpreter: the exported model on the job's test samples, as the job scored them.
FRESH = """
import json, sys, torch
import harness
from harness.pde.cache import load_split, load_time_split
folder = sys.argv[1]
data, config = (json.load(open(f"{folder}/{name}.json")) for name in ("data", "config"))
model = harness.load_model(folder)
request = dict(shift=data["shift"], resolution=data["resolution"], seed=data["data_seed"])
if config["task"] == "steady":
    test = load_split(data["system"], "test", data["n_test"], **request)
    with torch.no_grad():
        pred = model(test.source[:, None], test.coef_common)
    truth = torch.as_tensor(test.solution[:, None])
    error = ((pred - truth).flatten(1).norm(dim=1) / truth.flatten(1).norm(dim=1)).double().mean()
else:
    job = config["job"]["config"]
    test = load_time_split(data["system"], "test", data["n_test"], nt=job["nt"], horizon=job["horizon"], **request)
    u, w = torch.as_tensor(test.u), config["time_window"]
    pred = model.rollout(u[:, :w], torch.as_tensor(test.coef_common), u.shape[1] - w)
    err = (pred - u[:, w:]).square().flatten(1).sum(dim=1).double()
    error = (err / u[:, w:].square().flatten(1).sum(dim=1).double()).sqrt().mean()
print(float(error))
"""


def _run(tmp: Path, spec: dict, skip: str = "") -> tuple[Path, dict[str, str]]:
    """Expand ``spec`` under tmp/results and run its jobs (but those of stage ``skip``); stage -> job id."""
    (tmp / f"{spec['name']}.yaml").write_text(yaml.safe_dump(spec))
    plan = api.expand(tmp / f"{spec['name']}.yaml", tmp / "results")
    for job in plan.jobs:
        if str(job.stage) != skip:
            assert run_job(job, tmp / "results")["status"] == "ok"
    return tmp / "results", {str(job.stage): job.id for job in plan.jobs}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A scratch steady job, a masked pretraining and its fine-tuning (not run), and a next_step job."""
    tmp = tmp_path_factory.mktemp("export")
    root, ids = _run(tmp, STEADY, skip="finetune")
    _, time_ids = _run(tmp, NEXT_STEP)
    return root, {**ids, "next_step": time_ids["scratch"]}


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


@pytest.mark.parametrize("kind, sweep", [("scratch", "steady"), ("next_step", "forecast")])
def test_an_exported_model_reproduces_the_test_error_in_a_fresh_process_without_the_results(
        trained: tuple[Path, dict[str, str]], tmp_path: Path, kind: str, sweep: str) -> None:
    root, ids = trained
    out = tmp_path / "model"
    code, output = _cli("export", ids[kind], "--out", str(out), "--sweep", sweep, "--root", str(root))
    assert code == 0 and output.strip() == f"wrote {out}", output
    assert {p.name for p in out.iterdir()} == {"model.safetensors", "config.json", "stats.json", "data.json",
                                               "metrics.json", "README.md"}
    metrics = json.loads((out / "metrics.json").read_text())["summary"]
    card = (out / "README.md").read_text()
    assert ids[kind] in card and f"{metrics['test_rel_l2']}" in card and f"harness export {ids[kind]}" in card
    moved = tmp_path / "moved"
    shutil.move(root, moved)  # no results folder: the export stands alone
    try:
        proc = subprocess.run([sys.executable, "-c", FRESH, str(out)], capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}, timeout=300)
    finally:
        shutil.move(moved, root)
    assert proc.returncode == 0, proc.stderr
    assert float(proc.stdout) == pytest.approx(metrics["test_rel_l2"], rel=0, abs=1e-6)
    assert 0 < metrics["test_rel_l2"] < 10


def test_export_refusals_are_one_line_exit_2_and_write_nothing(trained: tuple[Path, dict[str, str]],
                                                               tmp_path: Path) -> None:
    root, ids = trained
    existing = tmp_path / "taken"
    existing.mkdir()
    cases = [
        ("nope-123", tmp_path / "a", r"no job 'nope-123' in sweep steady"),
        (ids["finetune"], tmp_path / "b", rf"{ids['finetune']} ended missing, not ok: harness export needs a trained"),
        (ids["pretrain"], tmp_path / "c", r"is a masked pretraining: its head predicts no solution"),
        (ids["scratch"], existing, r"--out .*taken exists: pass --force"),
        (ids["scratch"], tmp_path / "no" / "d", r"folder .*no does not exist"),
    ]
    for job_id, out, message in cases:
        code, output = _cli("export", job_id, "--out", str(out), "--sweep", "steady", "--root", str(root))
        lines = output.strip().splitlines()
        assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), output
        assert __import__("re").search(message, lines[0]), lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"] and not any(existing.iterdir())
    code, output = _cli("export", ids["scratch"], "--out", str(existing), "--sweep", "steady", "--root", str(root),
                        "--force")
    assert code == 0 and (existing / "model.safetensors").is_file(), output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]  # no staging folder left behind
    # --force replaces an earlier export (again here), never a folder of other files: a mistyped --out naming the
    # results folder deletes nothing
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    code, output = _cli("export", ids["scratch"], "--out", str(root), "--sweep", "steady", "--root", str(root),
                        "--force")
    assert code == 2 and len(output.strip().splitlines()) == 1 and "is not an earlier export" in output, output
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before
    assert _cli("export", ids["scratch"], "--out", str(existing), "--sweep", "steady", "--root", str(root),
                "--force")[0] == 0



@pytest.mark.parametrize("spec", [STEADY, NEXT_STEP], ids=["steady", "next_step"])
def test_data_json_fingerprints_the_cache_files_the_job_read(spec: dict, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"  # a cache of this job's data alone
    monkeypatch.setenv("HARNESS_DATA_CACHE", str(cache))
    root, ids = _run(tmp_path, {**spec, "matrix": {"init": ["scratch"]}})
    out = tmp_path / "model"
    assert _cli("export", ids["scratch"], "--out", str(out), "--sweep", spec["name"], "--root", str(root))[0] == 0
    data = json.loads((out / "data.json").read_text())
    assert data["source"] == "generated" and set(data["fingerprints"]) == {"train", "val", "test"}
    for split, fingerprinted in data["fingerprints"].items():
        read = list(cache.glob(f"*-{split}-*.npz"))  # the one file of the split the job generated and read
        assert len(read) == 1, read
        assert fingerprinted is not None and fingerprinted == fingerprint(read[0], cache_dir=cache)
