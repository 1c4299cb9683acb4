"""Bad data and settings a new user's tour broke (issue 28), through the real `harness` command: files that lie
about their size, link to other files, hold types a model cannot take or frame times that are not finite and
increasing; training sets that cannot be generated in memory; zero targets and horizons the solutions do not
survive. One line naming the file or key, the value and the fix, exit status 2, nothing written."""

from __future__ import annotations

import re
import time
import zipfile
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import yaml

from harness.data.formats import write_arrays
from harness.data.subsets import draw, permutation
from tests.e2e.refusals import ONE, R, arrays_file, data_sweep, refused_untouched, time_sweep, trajectory_file
from tests.helpers import harness

# -- memory -------------------------------------------------------------------------------------------------------


def test_expand_counts_the_memory_of_generating_each_split(tmp_path: Path) -> None:
    for key, value in (("n_train", 100_000_000), ("n_test", 100_000_000)):
        spec = yaml.safe_load(yaml.safe_dump(ONE))
        spec["name"] = f"big-{key}"
        spec["base"]["downstream"][key] = value
        spec["base"]["train"]["batch_size"] = 8
        path = tmp_path / f"{spec['name']}.yaml"
        path.write_text(yaml.safe_dump(spec))
        refused_untouched(tmp_path, ["expand", path, "--root", tmp_path / "results"],
                          rf"base\.downstream\.{key} \(line \d+\).*generating .*GiB.*fewer samples")


def test_data_checks_memory_before_it_allocates(tmp_path: Path) -> None:
    start = time.perf_counter()
    refused_untouched(tmp_path, ["data", "poisson", "--n", "100000000", "--resolution", "1024", "--out",
                                 tmp_path / "big.npz"], r"100000000 poisson samples at 1024x1024 .*GiB.*fewer")
    refused_untouched(tmp_path, ["data", "heat", "--n", "100000", "--resolution", "512", "--nt", "512", "--out",
                                 tmp_path / "big.npz"], r"100000 heat trajectories of 512 frames .*GiB")
    assert time.perf_counter() - start < 10


# -- data files held to what they store ---------------------------------------------------------------------------


def test_a_file_declaring_rows_it_never_wrote_is_refused(tmp_path: Path) -> None:
    with h5py.File(tmp_path / "lie.h5", "w") as f:  # 1e9 rows, no chunk written: 2 KB on disk
        for name in ("inputs", "targets"):
            f.create_dataset(name, shape=(10**9, 1, R, R), dtype="f4", chunks=(1, 1, R, R))
    with h5py.File(tmp_path / "empty.h5", "w") as f:  # contiguous, never written
        for name in ("inputs", "targets"):
            f.create_dataset(name, shape=(40, 1, R, R), dtype="f4")
    for name in ("lie", "empty"):
        refused_untouched(tmp_path, ["expand", data_sweep(tmp_path, {"path": f"{name}.h5", "format": "arrays"}),
                                     "--root", tmp_path / "results"],
                          rf"{name}\.h5.*'inputs' .*written.*write the data")


def test_a_compressed_npz_declaring_more_than_it_holds_is_refused(tmp_path: Path) -> None:
    def member(shape: tuple[int, ...], nbytes: int) -> bytes:
        header = {"descr": "<f4", "fortran_order": False, "shape": shape}
        buffer = __import__("io").BytesIO()
        np.lib.format.write_array_header_1_0(buffer, header)
        return buffer.getvalue() + bytes(nbytes)

    with zipfile.ZipFile(tmp_path / "lie.npz", "w", zipfile.ZIP_DEFLATED) as zf:
        for name in ("inputs", "targets"):  # 16 GB declared, 4 MB held
            zf.writestr(f"{name}.npy", member((16_000_000, 1, 16, 16), 4 << 20))
    refused_untouched(tmp_path, ["expand", data_sweep(tmp_path, {"path": "lie.npz", "format": "arrays"}),
                                 "--root", tmp_path / "results"],
                      r"lie\.npz: dataset 'inputs' declares .*but its compressed member holds")


def test_links_to_other_files_are_refused(tmp_path: Path) -> None:
    write_arrays(tmp_path / "target.h5", *(np.ones((40, 1, R, R), "f4") for _ in range(2)))
    with h5py.File(tmp_path / "ext.h5", "w") as f:
        f["inputs"] = h5py.ExternalLink("target.h5", "/inputs")
        f["targets"] = h5py.ExternalLink("target.h5", "/targets")
    with h5py.File(tmp_path / "virt.h5", "w") as f:
        for name in ("inputs", "targets"):
            layout = h5py.VirtualLayout(shape=(40, 1, R, R), dtype="f4")
            layout[:] = h5py.VirtualSource(str(tmp_path / "target.h5"), name, shape=(40, 1, R, R))
            f.create_virtual_dataset(name, layout)
    raw = tmp_path / "raw.bin"
    raw.write_bytes(np.ones((40, 1, R, R), "f4").tobytes())
    with h5py.File(tmp_path / "external.h5", "w") as f:
        for name in ("inputs", "targets"):
            f.create_dataset(name, shape=(40, 1, R, R), dtype="f4", external=[(str(raw), 0, raw.stat().st_size)])
    for name, what in (("ext", "external link"), ("virt", "virtual dataset"), ("external", "external storage")):
        refused_untouched(tmp_path, ["expand", data_sweep(tmp_path, {"path": f"{name}.h5", "format": "arrays"}),
                                     "--root", tmp_path / "results"],
                          rf"{name}\.h5.*'inputs' is an? {what}.*copy the data into the file")


@pytest.mark.parametrize(("name", "dtype", "shown"), [
    ("complex", np.complex64, "complex64"), ("bytes", "S2", r"bytes|\|S2"), ("object", object, "object|str"),
])
def test_data_types_a_model_cannot_take_are_refused(tmp_path: Path, name: str, dtype: Any, shown: str) -> None:
    inputs = np.ones((40, 1, R, R)).astype(dtype) if name != "object" else np.full((40, 1, R, R), "a", object)
    arrays_file(tmp_path / f"{name}.h5", inputs=inputs)
    refused_untouched(tmp_path, ["expand", data_sweep(tmp_path, {"path": f"{name}.h5", "format": "arrays"}),
                                 "--root", tmp_path / "results"], rf"{name}\.h5.*'inputs' .*({shown}).*real numbers")


@pytest.mark.parametrize(("t", "shown"), [
    ([0.0, np.nan, 2 / 3, 1.0], r"'t' .*nan"), ([0.0, 2 / 3, 1 / 3, 1.0], r"'t' .*increasing"),
    ([0.0, 1 / 3, 2 / 3, np.inf], r"'t' .*inf"),
])
def test_frame_times_that_are_not_finite_and_increasing_are_refused(tmp_path: Path, t: list[float], shown: str
                                                                     ) -> None:
    trajectory_file(tmp_path / "traj.h5", np.asarray(t, "f4"))
    sweep = time_sweep(tmp_path, {"path": "traj.h5", "format": "pretraining-pdes"}, "traj")
    refused_untouched(tmp_path, ["expand", sweep, "--root", tmp_path / "results"], rf"traj\.h5.*{shown}")


def test_drawing_n_rows_of_a_huge_file_costs_n_not_the_rows() -> None:
    start = time.perf_counter()
    rows = draw(10**12, (0, 10**12), 1000, seed=3)
    assert time.perf_counter() - start < 0.5
    assert len(set(rows.tolist())) == 1000 and rows.min() >= 0 and rows.max() < 10**12
    assert draw(10**12, (0, 10**12), 10, seed=3).tolist() == rows[:10].tolist()  # nested
    test, train = draw(10**12, (0, 10**6), 1000, seed=3), draw(10**12, (10**6, 10**12), 1000, seed=3)
    assert not set(test.tolist()) & set(train.tolist())  # disjoint regions
    # a file of the sizes every existing sweep reads draws what it drew before (their results stay valid)
    assert draw(5000, (100, 5000), 64, seed=7).tolist() == permutation(5000, 7)[100:164].tolist()


def test_a_symlink_loop_as_data_path_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "loop1.h5").symlink_to(tmp_path / "loop2.h5")
    (tmp_path / "loop2.h5").symlink_to(tmp_path / "loop1.h5")
    refused_untouched(tmp_path, ["expand", data_sweep(tmp_path, {"path": "loop1.h5", "format": "arrays"}),
                                 "--root", tmp_path / "results"], r"loop1\.h5.*symbolic links? .*loop")


@pytest.mark.parametrize("attrs", ["[1, 2]", "not json", '"text"'])
def test_npz_attrs_that_are_not_a_json_mapping_are_one_line(tmp_path: Path, attrs: str) -> None:
    ones = np.ones((40, 1, R, R), "f4")
    np.savez(tmp_path / "a.npz", inputs=ones, targets=ones, attrs=np.array(attrs))
    refused_untouched(tmp_path, ["expand", data_sweep(tmp_path, {"path": "a.npz", "format": "arrays"}),
                                 "--root", tmp_path / "results"], r"a\.npz.*attrs.*JSON mapping")


# -- wrong advice ---------------------------------------------------------------------------------------------------


def test_zero_targets_are_named_not_blamed_on_the_learning_rate(tmp_path: Path) -> None:
    arrays_file(tmp_path / "zeros.h5", targets=np.zeros((40, 1, R, R), "f4"))
    sweep = data_sweep(tmp_path, {"path": "zeros.h5", "format": "arrays"}, name="zeros")
    root = tmp_path / "results"
    harness(root, "expand", str(sweep))
    assert harness(root, "submit", "--backend", "inline", check=False).returncode == 1
    status = harness(root, "status", check=False).stdout
    assert re.search(r"zeros\.h5.*targets .*zero.*relative error", status), status
    assert "learning rate" not in status


def test_a_horizon_the_solutions_do_not_survive_is_refused_at_expand(tmp_path: Path) -> None:
    for horizon in (1.0e308, 1.0e6):
        sweep = time_sweep(tmp_path, None, "far", horizon=horizon)
        refused_untouched(tmp_path, ["expand", sweep, "--root", tmp_path / "results"],
                          r"horizon.*decay.*use horizon <= ")
