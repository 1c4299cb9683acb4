"""The time-dependent tasks on trajectories from files (`pretraining-pdes`): a next_step sweep (a pretext
pretraining and fine-tunings) through `harness expand` / `submit` / `report` on a file `harness data` wrote, the
same job on a file of the generator's own
trajectories equal to the job on generated data, and each rule expand checks such a file against (one line,
exit 2, nothing written)."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from harness.cli import main
from harness.data.fingerprint import fingerprint
from harness.data.formats import write_pretraining_pdes, write_tl_scaling
from harness.data.formats.pretraining_pdes import DEFAULT_GROUPS
from harness.data.samples import samples_of
from harness.data.source import load
from harness.job import Job, JobConfig, Model
from harness.job.run import data_seed
from harness.models.fno import FNO
from harness.pde import DEFAULT_HORIZON
from harness.pde.cache import load_time_split, resolve_cache_dir
from harness.pde.steady_dataset import generate
from harness.pde.time_dataset import generate_time
from harness.store import Stage
from harness.store.folders import read_plan
from tests import data_layouts
from tests.helpers import assert_refused_at_expand, cli, harness, results, write_sweep

R, NT, W, ROWS = 16, 6, 2, 40
TASK = {"task": "next_step", "time_window": W, "nt": NT, "horizon": DEFAULT_HORIZON, "resolution": R,
        "model": {"width": 4, "modes": 4}}
TRAIN = {"steps": 10, "lr": 3.0e-3, "batch_size": 8}


def _sweep(name: str, downstream: dict, matrix: dict | None = None, **base: object) -> dict:
    return {"name": name, "base": {**TASK, "init": "scratch", "train": TRAIN,
                                   "downstream": {"system": "advection", "shift": "id", "n_val": 4, "n_test": 4,
                                                  **downstream}, **base}, "matrix": matrix or {}}


def test_a_next_step_sweep_runs_on_a_pretraining_pdes_file_written_by_harness_data(tmp_path: Path) -> None:
    path = tmp_path / "advection.h5"
    out = CliRunner().invoke(main, ["data", "advection", "--n", str(ROWS), "--resolution", str(R), "--nt", str(NT),
                                    "--seed", "3", "--out", str(path), "--format", "pretraining-pdes"])
    assert out.exit_code == 0, out.output
    written = generate_time("advection", ROWS, resolution=R, nt=NT, seed=3)  # what harness data wrote
    spec = {"path": path.name, "format": "pretraining-pdes"}  # relative to the sweep file's folder
    pretrain = {"strategy": "coefficient", "n_train": 8, "n_val": 4, "n_test": 4, "data": spec,
                "train": {"steps": 5, "lr": 1.0e-3, "batch_size": 8}}  # a pretext task on the same file
    sweep = write_sweep(tmp_path, _sweep("traj", {"data": spec}, {"downstream.n_train": [8, 16]},
                                         init="pretrained", pretrain=pretrain))
    root = tmp_path / "results"
    cli(root, "expand", str(sweep))
    harness(root, "submit", str(sweep), "--backend", "inline")
    cli(root, "report", "traj", "--n-boot", "20")
    assert (root / "traj" / "report" / "report.md").is_file()
    table = results(root, "traj")
    assert len(table) == 3 and set(table["status"]) == {"ok"}, table[["status", "error"]]
    assert (table["pretrain.data.fingerprint"] == fingerprint(path)).all()
    rows = table[table["stage"] == "finetune"].set_index("id")
    assert (rows["downstream.data.fingerprint"] == fingerprint(path)).all()
    assert (rows[["downstream.system", "downstream.shift"]].drop_duplicates().values.tolist()
            == [["pretraining-pdes", "advection"]])
    assert (rows["n_params"] == FNO(width=4, modes=4, in_channels=W + 5).num_params()).all()  # W frames, 5 coefs
    assert (rows["transferred"] == "lifting,pointwise,spectral").all()  # the pretext head dropped
    assert (rows["rollout_step_rel_l2"].map(json.loads).map(len) == NT - W).all()
    drawn = {}
    for job in read_plan(root / "traj").jobs:
        if job.stage != "finetune":
            continue
        part, seed = job.config.downstream, data_seed(job)
        assert part.data.fingerprint == fingerprint(path)  # in the job's config, so in its id
        splits = {}
        for split in ("train", "val", "test"):  # what the job drew, as its data step draws it
            t = load(part.data, split, getattr(part, f"n_{split}"), seed)
            np.testing.assert_array_equal(t.u, written.u[t.indices])
            np.testing.assert_array_equal(t.coefficients, written.coef_common[t.indices])
            splits[split] = set(t.indices.tolist())
        train, val, test = splits.values()
        assert not (train & val or train & test or val & test)  # disjoint across splits
        drawn[part.n_train] = (train, val, test)
    assert drawn[8][0] < drawn[16][0] and drawn[8][1:] == drawn[16][1:]  # nested in N, held-out splits fixed


def test_next_step_on_a_file_of_generated_trajectories_matches_the_generated_data(tmp_path: Path) -> None:
    n = {"train": 16, "val": 4, "test": 4}
    seed = data_seed(Job("sc-0", Stage.SCRATCH, "same", JobConfig(R, 0, Model())))  # scratch at data_seed 0
    paths = {}
    for split, count in n.items():  # the splits the scratch job draws, one file each (group as in their files)
        data = load_time_split("advection", split, count, shift="id", resolution=R, nt=NT, seed=seed,
                                   cache_dir=resolve_cache_dir())
        paths[split] = str(write_pretraining_pdes(tmp_path / f"advection_{split}.h5", data.u, data.coef_common,
                                                  data.t, group=DEFAULT_GROUPS[split]))
    matrix = {"downstream.data": [None, {"path": paths, "format": "pretraining-pdes"}]}
    sweep = write_sweep(tmp_path, _sweep("same", {"n_train": n["train"]}, matrix))
    root = tmp_path / "results"
    cli(root, "expand", str(sweep))
    harness(root, "submit", str(sweep), "--backend", "inline")
    rows = results(root, "same").set_index("downstream.shift")
    assert set(rows["status"]) == {"ok"}
    generated, from_file = rows.loc["id"], rows.loc["advection_train"]
    assert from_file["downstream.data.path.train"] == paths["train"]
    for column in ("test_rel_l2", "best_val_rel_l2"):
        assert abs(from_file[column] - generated[column]) <= 1e-6
    # Every step of the rollout, to the last bit: the same tensors, windows and weights. (A few steps of a width-4
    # model learn little of next_step, so no "it learnt" check: the floats compared depend on every sample.)
    assert from_file["rollout_step_rel_l2"] == generated["rollout_step_rel_l2"]
    assert from_file["best_step"] == generated["best_step"] and from_file["steps_run"] == 10


def _trajectories(path: Path, *, nt: int = NT, grid: int = R, t: np.ndarray | None = None,
                  extra: tuple[str, ...] = ()) -> Path:
    rng = np.random.default_rng(0)
    write_pretraining_pdes(path, rng.standard_normal((ROWS, nt, grid, grid)).astype("f4"),
                           rng.uniform(0, 1, (ROWS, 5)), np.linspace(0, DEFAULT_HORIZON, nt) if t is None else t)
    with h5py.File(path, "a") as f:
        for name in extra:  # Navier-Stokes' coefficients beside nonzero heat/advection/Burgers ones
            f["train"][name] = np.ones(ROWS)
    return path


def _files(folder: Path) -> None:
    """One file per way of not fitting a next_step task of NT frames at R x R (and one right one)."""
    _trajectories(folder / "good.h5")
    _trajectories(folder / "long.h5", nt=NT + 2)
    _trajectories(folder / "short_horizon.h5", t=np.linspace(0, 1, NT))
    _trajectories(folder / "uneven.h5", t=np.linspace(0, 1, NT) ** 2 * DEFAULT_HORIZON)
    _trajectories(folder / "coarse.h5", grid=8)
    _trajectories(folder / "ns.h5", extra=("visc", "amp"))
    data_layouts.trajectories(folder / "oblong.h5", {"train": ROWS}, nt=NT, nx=R, ny=R // 2)
    write_tl_scaling(folder / "steady.h5", samples_of(generate("poisson", 8, resolution=R)))


def _data(path: str, **downstream: object) -> str:
    spec = _sweep("bad", {"n_train": 16, "data": {"path": path, "format": "pretraining-pdes"}, **downstream})
    return yaml.safe_dump(spec, sort_keys=False)


BAD = [
    ("a-steady-format", _data("steady.h5").replace("format: pretraining-pdes", "format: tl-scaling"),
     r"downstream\.data\.format: tl-scaling holds steady data, this job needs trajectory data: use pretraining-pdes$"),
    ("frames-against-nt", _data("long.h5"), r"long\.h5 holds trajectories of 8 frames but nt is 6: set nt: 8 "
     r"\(time_window, target and unroll count in the file's frames\)$"),
    ("frames-against-the-window", _data("good.h5").replace("time_window: 2", "time_window: 6"),
     r"base\.time_window \(line \d+\) at point \(base\): 6 frames do not fit trajectories of nt 6 frames"),
    ("horizon", _data("short_horizon.h5"), r"short_horizon\.h5 holds frames over 1 time units \(t from 0 to 1\) "
     r"but horizon is 2: set horizon: 1$"),
    ("uneven-frames", _data("uneven.h5"), r"uneven\.h5: its frames are not evenly spaced in t \(steps from .* to "
     r".*\): the time tasks take evenly spaced frames \(resample the data\)$"),
    ("resolution", _data("coarse.h5"), r"coarse\.h5 holds 8x8 grids but resolution is 16: set resolution: 8"),
    ("oblong-grid", _data("oblong.h5"), r"oblong\.h5 holds 16x8 grids: the tasks need square n x n grids"),
    ("two-families", _data("ns.h5"), r"ns\.h5\[train\]: holds Navier-Stokes' visc, amp and a nonzero nu \(row 0\): "
     r"a group holds one family, nu, ax, ay, cx, cy or visc, amp .* split the file by equation$"),
    ("rows-per-split", _data("good.h5", n_train=33), r"good\.h5\[train\]: n_train = 33 is more than the 32 of its "
     r"40 rows in the train region"),
]


@pytest.mark.parametrize(("text", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_a_file_that_does_not_fit_the_time_task_is_one_line_exit_2_nothing_written(tmp_path: Path, text: str,
                                                                                 message: str) -> None:
    _files(tmp_path)
    sweep = tmp_path / "bad.yaml"
    sweep.write_text(text)
    assert_refused_at_expand(sweep, message)


def test_the_good_trajectory_file_expands_with_a_pretext_pretraining_on_it(tmp_path: Path) -> None:
    """The control, with a pretext strategy pretraining on the file (the steady task refuses that: its pretext
    tasks need generated data's channels; a time task's file has the generated trajectories' channels)."""
    _files(tmp_path)
    spec = yaml.safe_load(_data("good.h5").replace("name: bad", "name: good"))
    spec["base"].update(init="pretrained", pretrain={"strategy": "coefficient", "n_train": 16, "n_val": 4,
                                                     "n_test": 4, "data": {"path": "good.h5",
                                                                           "format": "pretraining-pdes"}})
    (tmp_path / "good.yaml").write_text(yaml.safe_dump(spec))
    root = tmp_path / "results"
    result = CliRunner().invoke(main, ["expand", str(tmp_path / "good.yaml"), "--root", str(root), "--json"])
    assert result.exit_code == 0, result.output
    jobs = read_plan(root / "good").jobs
    assert {job.stage for job in jobs} == {"pretrain", "finetune"}
    assert all(part.data.fingerprint == fingerprint(tmp_path / "good.h5")
               for job in jobs for part in (job.config.pretrain, job.config.downstream) if part is not None)
