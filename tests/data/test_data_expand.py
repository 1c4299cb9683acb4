"""`harness expand` of a sweep with a `data:` source: every bad input is one line naming the sweep file, the key
(and its line), the data file and the fix, exit 2, and nothing written. (What only reading the samples
reveals -- NaN or inf, a damaged chunk, a file changed since expand -- is refused at the job's data step:
tests/data/test_data_sources.py and tests/e2e/test_data_sweeps.py.)"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from harness.cli import main
from tests import data_layouts
from tests.helpers import assert_refused_at_expand

R = 16


def _tl(path: Path, n: int = 40, *, tensor_rows: int | None = None, grid: tuple[int, int] = (R, R)) -> Path:
    rng = np.random.default_rng(0)
    return data_layouts.tl_scaling(path, rng.standard_normal((n, 2, *grid)), rng.uniform(0, 1, (tensor_rows or n, 3)))


def _files(folder: Path) -> None:
    """One file per way of being wrong (and one right one), named for it."""
    _tl(folder / "good.h5")
    (folder / "notes.h5").write_text("not data")
    data_layouts.darcy(folder / "darcy.h5", np.ones((40, R, R)), np.ones((40, 1, R, R)))
    with h5py.File(folder / "no_tensor.h5", "w") as f:
        f["fields"] = np.zeros((40, 2, R, R), "f4")
    _tl(folder / "short_tensor.h5", tensor_rows=39)
    _tl(folder / "oblong.h5", grid=(R, R // 2))
    _tl(folder / "coarse.h5", grid=(8, 8))
    data_layouts.trajectories(folder / "traj.h5", {"train": 10, "valid": 4, "test": 4})


def _sweep(downstream: dict, **base: object) -> str:
    spec = {"name": "bad", "base": {"resolution": R, "init": "scratch", "downstream": {"n_train": 16, "n_val": 4,
                                                                                       "n_test": 4, **downstream},
                                    **base}}
    return yaml.safe_dump(spec, sort_keys=False)


def _data(path: str, fmt: str = "tl-scaling", **extra: object) -> dict:
    return {"data": {"path": path, "format": fmt, **extra}}


BAD = [
    ("missing-file", _sweep(_data("nope.h5")), r"base\.downstream\.data \(line \d+\) at point \(base\): "
     r"downstream\.data: /\S+/nope\.h5 does not exist: check the path$"),
    ("not-a-data-file", _sweep(_data("notes.h5")), r"notes\.h5 is neither HDF5 nor \.npz .*: give a data file in "
     r"one of the documented layouts$"),
    ("file-of-another-format", _sweep(_data("darcy.h5")), r"darcy\.h5 has no dataset 'fields' \(it holds: nu, "
     r"t-coordinate, tensor, x-coordinate, y-coordinate\).*is the format right\?$"),
    ("missing-dataset-key", _sweep(_data("no_tensor.h5")), r"no_tensor\.h5 has no dataset 'tensor' \(it holds: "
     r"fields\)"),
    ("rows-disagree", _sweep(_data("short_tensor.h5")), r"short_tensor\.h5: datasets disagree on the number of "
     r"samples \(fields 40, tensor 39\): every dataset needs one row per sample$"),
    ("non-square-grid", _sweep(_data("oblong.h5")), r"oblong\.h5: the grid is 16x8: the steady pipeline needs "
     r"square n x n grids \(resample the data\)$"),
    ("resolution", _sweep(_data("coarse.h5")), r"downstream\.data: /\S+/coarse\.h5 holds 8x8 grids but resolution "
     r"is 16: set resolution: 8"),
    ("too-many-samples", _sweep({**_data("good.h5"), "n_train": 33}), r"base\.downstream\.data \(line \d+\) at "
     r"point \(base\): downstream\.data: /\S+/good\.h5: n_train = 33 is more than the 32 of its 40 rows in the "
     r"train region \(val 0\.1 and test 0\.1 held out\): ask for fewer"),
    ("too-many-at-a-point", _sweep(_data("good.h5")) + "matrix:\n  downstream.n_val: [4, 5]\n",
     r"base\.downstream\.data \(line \d+\) at point \(downstream\.n_val=5\): .*good\.h5: n_val = 5 is more "
     r"than the 4 of its 40 rows in the val region"),
    ("trajectories", _sweep(_data("traj.h5", "pretraining-pdes")), r"downstream\.data\.format: pretraining-pdes "
     r"holds trajectory data, this job needs steady data: use tl-scaling, pdebench-darcy, arrays$"),
    ("unknown-spec-key", _sweep(_data("good.h5", group="a")), r"base\.downstream\.data \(line \d+\): "
     r"downstream\.data: unknown key\(s\) group for format tl-scaling"),
    ("unknown-format", _sweep(_data("good.h5", "hdf5")), r"downstream\.data\.format: must be one of tl-scaling, "
     r"pretraining-pdes, pdebench-darcy, arrays, got 'hdf5'"),
    ("zeroshot-on-other-channels", _sweep(_data("darcy.h5", "pdebench-darcy"), init="zeroshot"),
     r"at point \(base\): init zeroshot evaluates the pretrained model as it is, but the downstream data has 1 "
     r"input and 1 output channels, the pretrained model 7 and 1: use init pretrained \(fine-tuning "
     r"re-initialises the modules that differ\)$"),
    ("pretext-pretraining-on-a-file", _sweep({}, init="pretrained", pretrain={**_data("good.h5"), "n_train": 16,
                                                                              "n_val": 4, "n_test": 4,
                                                                              "strategy": "masked",
                                                                              "mask_patches": 4}),
     r"pretrain\.strategy \(line \d+\) at point \(base\): pretrain\.data trains supervised pretraining only, not "
     r"masked: set pretrain\.strategy: supervised$"),
]


@pytest.mark.parametrize(("text", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_data_is_one_clear_line_exit_2_and_nothing_written(tmp_path: Path, text: str, message: str) -> None:
    _files(tmp_path)
    sweep = tmp_path / "bad.yaml"
    sweep.write_text(text)
    assert_refused_at_expand(sweep, message)


def test_the_good_file_expands(tmp_path: Path) -> None:
    """The control: the same sweep with the right file writes the plan, the file resolved in the job."""
    _files(tmp_path)
    (tmp_path / "good.yaml").write_text(_sweep(_data("good.h5")).replace("name: bad", "name: good"))
    root = tmp_path / "results"
    result = CliRunner().invoke(main, ["expand", str(tmp_path / "good.yaml"), "--root", str(root), "--json"])
    assert result.exit_code == 0, result.output
    assert str(tmp_path / "good.h5") in result.output and (root / "good" / "plan.json").is_file()
