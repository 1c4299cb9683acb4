"""Sweeps over data on disk: a `data:` source through `harness expand` / `submit` / `report`, the files'
fingerprints in the job ids, fine-tuning on a file equal to fine-tuning on the generated data written to it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np

from harness.data.fingerprint import fingerprint
from harness.data.formats import write_tl_scaling
from harness.data.samples import samples_of
from harness.data.source import load
from harness.job.run import data_seed
from harness.models.fno import FNO
from harness.pde.cache import load_split
from tests import data_layouts
from tests.helpers import cli, harness, results, write_sweep

R, ROWS = 16, 40
SPLIT_N = {"n_val": 4, "n_test": 4}
FILES = {  # spec name -> file name
    "tl": "poisson_tl.h5", "darcy": "2D_DarcyFlow_beta1.0_Train.hdf5", "arrays-h5": "mine.h5",
    "arrays-npz": "mine.npz",
}


def _darcy_rows(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    return rng.uniform(0.1, 1, (n, R, R)).astype("f4"), rng.standard_normal((n, 1, R, R)).astype("f4")


def _layout_files(folder: Path) -> dict[str, dict[str, np.ndarray]]:
    """One small file in each steady layout (40 rows at 16x16); returns per file what was written, in the
    harness's axis order (x first): inputs (N, C, n, n), targets (N, T, n, n)."""
    rng = np.random.default_rng(7)
    fields = rng.standard_normal((ROWS, 2, R, R)).astype("f4")  # the study's (y, x) order
    data_layouts.tl_scaling(folder / FILES["tl"], fields, rng.uniform(0.01, 0.05, (ROWS, 3)).astype("f4"))
    nu, solution = _darcy_rows(ROWS)
    data_layouts.darcy(folder / FILES["darcy"], nu, solution)
    inputs = rng.standard_normal((ROWS, 2, R, R)).astype("f4")
    targets = rng.standard_normal((ROWS, 1, R, R)).astype("f4")
    coefficients = rng.uniform(-1, 1, (ROWS, 3))
    data_layouts.arrays_h5(folder / FILES["arrays-h5"], inputs, targets, coefficients)
    np.savez(folder / FILES["arrays-npz"], inputs=inputs, targets=targets)  # as a user writes one
    return {"tl": {"inputs": fields[:, :1].swapaxes(2, 3), "targets": fields[:, 1:].swapaxes(2, 3)},
            "darcy": {"inputs": nu[:, None], "targets": solution},
            "arrays-h5": {"inputs": inputs, "targets": targets}, "arrays-npz": {"inputs": inputs, "targets": targets}}


def _sweep(name: str, base: dict, matrix: dict) -> dict:
    return {"name": name, "base": {"resolution": R, "model": {"width": 4, "modes": 4}, **base}, "matrix": matrix}


SCRATCH = {"init": "scratch", "downstream": {"n_train": 16, **SPLIT_N},
           "train": {"steps": 3, "batch_size": 8, "lr": 1.0e-3}}


def test_a_sweep_over_each_layout_runs_on_the_samples_written(tmp_path: Path) -> None:
    written = _layout_files(tmp_path)
    specs = [{"path": FILES[k], "format": "tl-scaling" if k == "tl" else "pdebench-darcy" if k == "darcy"
              else "arrays"} for k in FILES]  # paths relative to the sweep file's folder
    sweep = write_sweep(tmp_path, _sweep("files", SCRATCH, {"downstream.data": specs}))
    root = tmp_path / "results"
    cli(root, "expand", str(sweep))
    harness(root, "submit", str(sweep), "--backend", "inline")
    cli(root, "report", "files", "--n-boot", "20")
    assert (root / "files" / "report" / "report.md").is_file()
    rows = results(root, "files")
    assert len(rows) == 4 and set(rows["status"]) == {"ok"}, rows[["status", "error"]]
    assert np.isfinite(rows["test_rel_l2"]).all()
    for job in json.loads((root / "files" / "plan.json").read_text())["jobs"]:
        part = job.config.downstream
        key = next(k for k, name in FILES.items() if part["data"]["path"] == str(tmp_path / name))
        row = rows.set_index("id").loc[job.id]
        assert row["downstream.data.fingerprint"] == fingerprint(tmp_path / FILES[key])
        assert row["downstream.data.path"] == str(tmp_path / FILES[key])
        seed, splits = data_seed(job), {}
        for split in ("train", "val", "test"):  # what the job drew, as its data step draws it
            s = load(part["data"], split, part[f"n_{split}"], seed)
            np.testing.assert_array_equal(s.fields, written[key]["inputs"][s.indices])
            np.testing.assert_array_equal(s.targets, written[key]["targets"][s.indices])
            splits[split] = set(s.indices.tolist())
        train, val, test = splits.values()
        assert not (train & val or train & test or val & test)  # disjoint across splits
        assert set(load(part["data"], "train", 8, seed).indices) < train  # nested in N
        in_channels = {"tl": 7, "darcy": 1, "arrays-h5": 2 + 3, "arrays-npz": 2}[key]  # the model takes the file's
        assert row["n_params"] == FNO(width=4, modes=4, in_channels=in_channels).num_params()
        assert (row["downstream.system"], row["downstream.shift"]) == (
            "poisson" if key == "tl" else part["data"]["format"], Path(FILES[key]).stem)  # the report's panels


def _written_generated(folder: Path, n: dict[str, int], seed: int) -> dict[str, str]:
    """The generated Poisson splits a downstream job of ``seed`` draws, each written as a tl-scaling file."""
    paths = {}
    for split, count in n.items():
        data = load_split("poisson", split, count, resolution=R, seed=seed, cache_dir=os.environ.get(
            "HARNESS_DATA_CACHE"))
        paths[split] = str(write_tl_scaling(folder / f"poisson_{split}.h5", samples_of(data)))
    return paths


def test_fine_tuning_on_a_tl_scaling_file_of_generated_data_matches_the_generated_data(tmp_path: Path) -> None:
    n = {"train": 16, "val": 8, "test": 8}
    paths = _written_generated(tmp_path, n, data_seed({"data_seed": 0}, "finetune"))
    darcy = data_layouts.darcy(tmp_path / "darcy.h5", *_darcy_rows(ROWS))
    base = {"pretrain": {"n_train": 32, "n_val": 8, "n_test": 8,
                         "train": {"steps": 50, "lr": 1.0e-2, "batch_size": 16}},
            "downstream": {f"n_{s}": v for s, v in n.items()}, "train": {"steps": 25, "lr": 3.0e-3, "batch_size": 8}}
    held = {"val": 0.25, "test": 0.25}
    matrix = {"downstream.data": [None, {"path": paths, "format": "tl-scaling"},
                                  {"path": str(darcy), "format": "pdebench-darcy", "fractions": held}]}
    sweep = write_sweep(tmp_path, _sweep("transfer", base, matrix))
    root = tmp_path / "results"
    cli(root, "expand", str(sweep))
    harness(root, "submit", str(sweep), "--backend", "inline")
    rows = results(root, "transfer")
    assert set(rows["status"]) == {"ok"} and sorted(rows["stage"]) == ["finetune"] * 3 + ["pretrain"]
    tuned = rows[rows["stage"] == "finetune"].set_index("downstream.shift")
    generated, from_file = tuned.loc["id"], tuned.loc["poisson_train"]
    assert from_file["downstream.data.path.train"] == paths["train"]
    assert generated["transferred"] == from_file["transferred"] == "head,lifting,pointwise,spectral"
    # Darcy's one input channel: the lifting is re-initialised, the rest transferred
    assert tuned.loc["darcy", "transferred"] == "head,pointwise,spectral"
    assert abs(from_file["test_rel_l2"] - generated["test_rel_l2"]) <= 1e-6
    assert abs(from_file["best_val_rel_l2"] - generated["best_val_rel_l2"]) <= 1e-6
    assert from_file["test_rel_l2"] < 1  # it learnt something: the comparison is not of two failures


def test_a_changed_file_changes_the_ids_and_a_file_changed_after_expand_is_refused(tmp_path: Path) -> None:
    written = _layout_files(tmp_path)
    spec = {"path": FILES["arrays-h5"], "format": "arrays"}
    sweep = write_sweep(tmp_path, _sweep("ids", SCRATCH, {"downstream.data": [spec, None],
                                                          "downstream.n_train": [8]}))
    root = tmp_path / "results"

    def plan() -> dict[str, bool]:
        cli(root, "expand", str(sweep))
        jobs = json.loads((root / "ids" / "plan.json").read_text())["jobs"]
        return {j.id: j.config.downstream.data is not None for j in jobs}

    before = plan()
    with h5py.File(tmp_path / FILES["arrays-h5"], "a") as f:  # the user replaces one sample
        f["targets"][3] = -written["arrays-h5"]["targets"][3]
    after = plan()
    assert [i for i, d in before.items() if not d] == [i for i, d in after.items() if not d]  # generated: same
    assert {i for i, d in before.items() if d}.isdisjoint(i for i, d in after.items() if d)
    with h5py.File(tmp_path / FILES["arrays-h5"], "a") as f:  # and changes it again after expand
        f["targets"][4] = 0.0
    refused = harness(root, "submit", str(sweep), "--backend", "inline", check=False)  # the file's jobs: new ids
    assert refused.returncode == 2 and "--reexpand" in refused.stderr and not (root / "ids" / "runs").exists()
    harness(root, "submit", "ids", "--backend", "inline", "--only", "scratch", check=False)  # the plan as it is
    rows = results(root, "ids").set_index("id")
    data_id = next(i for i, d in after.items() if d)
    assert rows.loc[data_id, "status"] == "failed"
    assert "changed since its fingerprint" in rows.loc[data_id, "error"] and "expand the sweep again" in \
        rows.loc[data_id, "error"]

