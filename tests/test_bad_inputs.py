"""Every input a new user's tour broke (issue 28), through the real `harness` command: one line naming the file
or option, the value and the fix, exit status 2, and nothing outside the intended files changed (every file
under the test's folder compared by size, mtime and sha256 before and after).

In this process (``click.testing.CliRunner``) where no job runs; in a subprocess where a job runs or a command
could hang. tests/test_fuzz.py holds the generated inputs."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from harness.cli import main
from harness.data import write_arrays, write_pretraining_pdes
from harness.data.subsets import draw, permutation
from tests.helpers import harness, write_sweep

R = 16
# One scratch job on 16x16 Poisson, width 6, 3 epochs: seconds.
ONE: dict[str, Any] = {
    "name": "one",
    "base": {"resolution": R, "init": "scratch", "model": {"width": 6, "modes": 4},
             "downstream": {"n_train": 8, "n_val": 4, "n_test": 4}, "train": {"epochs": 3, "batch_size": 8}},
}


# -- helpers -----------------------------------------------------------------------------------------------------


def snapshot(*folders: Path) -> dict[str, tuple]:
    """Every entry under ``folders``, links not followed: path -> (size, mtime_ns, sha256) of a file, the target
    of a link, or 'dir'."""
    out: dict[str, tuple] = {}
    for folder in folders:
        for parent, dirs, names in os.walk(folder):
            for name in dirs + names:
                path = Path(parent) / name
                st = path.lstat()
                if path.is_symlink():
                    out[str(path)] = ("link", os.readlink(path))
                elif path.is_dir():
                    out[str(path)] = ("dir",)
                else:
                    out[str(path)] = (st.st_size, st.st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest())
    return out


def refused(args: list[str], match: str) -> str:
    """`harness ARGS` in this process: exit status 2 and one line, ``error: ...`` matching ``match``."""
    result = CliRunner().invoke(main, [str(a) for a in args])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1, (result.exit_code, result.output, result.exception)
    assert lines[0].startswith("error: ") and re.search(match, lines[0]), lines[0]
    return lines[0]


def refused_untouched(folder: Path, args: list[str], match: str) -> str:
    """``refused`` and every file under ``folder`` as it was."""
    before = snapshot(folder)
    line = refused(args, match)
    assert snapshot(folder) == before
    return line


def ok(args: list[str]) -> str:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def expanded(folder: Path, sweep: dict[str, Any] = ONE) -> tuple[Path, Path]:
    """``sweep`` written under ``folder`` and expanded into folder/results; (sweep file, results root)."""
    path = write_sweep(folder, sweep)
    ok(["expand", path, "--root", folder / "results"])
    return path, folder / "results"


def data_sweep(folder: Path, data: dict[str, Any], name: str = "data", **base: Any) -> Path:
    """A one-job sweep whose downstream data is ``data`` (relative paths: the sweep file's folder)."""
    spec = yaml.safe_load(yaml.safe_dump(ONE))
    spec["name"] = name
    spec["base"]["downstream"]["data"] = data
    spec["base"].update(base)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def arrays_file(path: Path, n: int = 40, **overrides: np.ndarray) -> Path:
    """An `arrays` HDF5 file of ``n`` samples at R x R, datasets replaced by ``overrides``."""
    rng = np.random.default_rng(0)
    arrays = {"inputs": rng.standard_normal((n, 1, R, R)).astype("f4"),
              "targets": rng.standard_normal((n, 1, R, R)).astype("f4"), **overrides}
    with h5py.File(path, "w") as f:
        for name, value in arrays.items():
            f.create_dataset(name, data=value, dtype=h5py.string_dtype() if value.dtype == object else None)
    return path


def trajectory_file(path: Path, t: np.ndarray) -> Path:
    rng = np.random.default_rng(0)
    u = rng.standard_normal((40, len(t), R, R)).astype("f4")
    write_pretraining_pdes(path, u, rng.uniform(0.1, 1, (40, 5)).astype("f4"), np.linspace(0, 1, len(t)))
    with h5py.File(path, "r+") as f:
        f["train/t"][...] = t
    return path


def time_sweep(folder: Path, data: dict[str, Any] | None, name: str, **base: Any) -> Path:
    spec = {"name": name, "base": {"task": "next_step", "nt": 4, "time_window": 2, "horizon": 1.0, "resolution": R,
                                   "init": "scratch", "model": {"width": 6, "modes": 4},
                                   "pretrain": {"system": "heat"},
                                   "downstream": {"system": "heat", "n_train": 8, "n_val": 4, "n_test": 4,
                                                  **({"data": data} if data else {})},
                                   "train": {"epochs": 2, "batch_size": 8}, **base}}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """Sweep ONE run to the end by the real command (inline backend): (results root, its job id)."""
    folder = tmp_path_factory.mktemp("finished")
    root = folder / "results"
    harness(root, "expand", str(write_sweep(folder, ONE)))
    harness(root, "submit", "--backend", "inline")
    job = next((root / "one" / "runs").iterdir()).name
    return root, job


# -- paths confined to their root ---------------------------------------------------------------------------------


def test_gc_and_status_never_leave_the_root_named_in_current(tmp_path: Path) -> None:
    _, root = expanded(tmp_path)
    victim = tmp_path / "victim"
    (victim / "runs" / "sc-0123456789").mkdir(parents=True)
    (victim / "runs" / "sc-0123456789" / "summary.parquet").write_text("precious")
    shutil.copy(root / "one" / "plan.json", victim / "plan.json")
    (root / ".current").write_text("../victim\n")
    for args in (["gc", "--stale"], ["status"], ["submit", "--dry-run"]):
        refused_untouched(tmp_path, [*args, "--root", root], r"\.current.*'\.\./victim'.*harness expand")
    for args in (["gc", "../victim", "--stale"], ["status", "../victim"], ["report", ".."]):
        refused_untouched(tmp_path, [*args, "--root", root], r"'\.\.(/victim)?'.*not a sweep name")


def test_gc_removes_a_stale_link_not_what_it_points_to(tmp_path: Path) -> None:
    _, root = expanded(tmp_path)
    outside = tmp_path / "elsewhere"
    (outside / "x").mkdir(parents=True)
    (outside / "x" / "keep.txt").write_text("keep")
    runs = root / "one" / "runs"
    runs.mkdir()
    (runs / "sc-link").symlink_to(outside)
    (runs / "sc-stale").mkdir()
    (runs / "sc-stale" / "inner-link").symlink_to(outside / "x")
    kept = snapshot(outside)
    assert "removed 2 stale run(s)" in ok(["gc", "--stale", "--root", root])
    assert sorted(p.name for p in runs.iterdir()) == []
    assert snapshot(outside) == kept


# -- --out targets ------------------------------------------------------------------------------------------------


def test_data_out_is_never_an_existing_file_another_suffix_or_a_missing_folder(tmp_path: Path) -> None:
    _, root = expanded(tmp_path)
    data = ["data", "poisson", "--n", "2", "--resolution", str(R), "--out"]
    refused_untouched(tmp_path, [*data, root / "one" / "plan.json"], r"plan\.json.*\.npz, \.h5 or \.hdf5")
    refused_untouched(tmp_path, [*data, tmp_path / "x.png"], r"x\.png.*\.npz, \.h5 or \.hdf5")
    refused_untouched(tmp_path, [*data, tmp_path / "new" / "dir" / "x.npz"], r"new/dir.*does not exist.*create it")
    refused_untouched(tmp_path, [*data, root], r"--out .*results.*is a folder")
    ok([*data, tmp_path / "d.h5"])
    refused_untouched(tmp_path, [*data, tmp_path / "d.h5"], r"d\.h5 exists.*--force")
    before = (tmp_path / "d.h5").stat().st_mtime_ns
    ok([*data, tmp_path / "d.h5", "--force"])
    assert (tmp_path / "d.h5").stat().st_mtime_ns != before


def test_show_out_is_a_new_png_in_an_existing_folder(tmp_path: Path, finished: tuple[Path, str]) -> None:
    root, job = finished
    show = ["show", job, "--root", root, "--samples", "1", "--out"]
    (tmp_path / "old.png").write_bytes(b"old")
    refused_untouched(tmp_path, [*show, tmp_path / "fields.txt"], r"fields\.txt.*\.png")
    refused_untouched(tmp_path, [*show, tmp_path / "nodir" / "a.png"], r"nodir.*does not exist.*create it")
    refused_untouched(tmp_path, [*show, tmp_path / "old.png"], r"old\.png exists.*--force")
    refused_untouched(tmp_path, [*show, tmp_path], r"is a folder")
    ok([*show, tmp_path / "new.png"])
    assert (tmp_path / "new.png").read_bytes().startswith(b"\x89PNG")


def test_report_out_is_never_an_existing_file_or_a_missing_parent(tmp_path: Path, finished: tuple[Path, str]) -> None:
    root, _ = finished
    (tmp_path / "notes.txt").write_text("mine")
    refused_untouched(tmp_path, ["report", "--root", root, "--out", tmp_path / "notes.txt"],
                      r"notes\.txt.*(is a file|not a folder).*report folder")
    refused_untouched(tmp_path, ["report", "--root", root, "--out", tmp_path / "a" / "b"],
                      r"a.*does not exist.*create it")


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
                                 tmp_path / "big.npz"], r"--n 100000000.*GiB.*fewer samples")
    refused_untouched(tmp_path, ["data", "heat", "--n", "100000", "--resolution", "512", "--nt", "512", "--out",
                                 tmp_path / "big.npz"], r"--n 100000.*GiB")
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
                                 "--root", tmp_path / "results"], r"lie\.npz.*member inputs.*holds")


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


# -- arguments ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("option", [["--workers", "0"], ["--workers", "-1"], ["--jobs-per-gpu", "0"]])
def test_worker_counts_below_one_are_refused_without_running(tmp_path: Path, option: list[str]) -> None:
    _, root = expanded(tmp_path)
    before = snapshot(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "submit", *option, "--root", str(root)],
                          capture_output=True, text=True, timeout=120)
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and re.search(rf"{option[0]}.*{option[1]}", lines[0]), lines
    assert snapshot(tmp_path) == before


def test_a_root_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    path = write_sweep(tmp_path, ONE)
    (tmp_path / "afile").write_text("x")
    for args in (["expand", path], ["status"], ["submit"], ["report"], ["gc", "--stale"]):
        refused_untouched(tmp_path, [*args, "--root", tmp_path / "afile"], r"--root .*afile.*not a folder")


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


def test_yaml_nested_thousands_of_levels_is_one_line(tmp_path: Path) -> None:
    for nested in ("[" * 5000 + "]" * 5000, "{a: " * 3000 + "1" + "}" * 3000):
        (tmp_path / "deep.yaml").write_text(f"name: deep\nbase:\n  x: {nested}\n")
        refused_untouched(tmp_path, ["expand", tmp_path / "deep.yaml", "--root", tmp_path / "results"],
                          r"deep\.yaml \(line 3\): nested deeper than \d+ levels")


def test_a_non_finite_setting_is_located_in_the_sweep_file(tmp_path: Path) -> None:
    for key, value in (("stream", {"budget_gb": float("nan")}), ("train", {"lr": float("inf")})):
        spec = yaml.safe_load(yaml.safe_dump(ONE))
        spec["base"][key] = {**spec["base"].get(key, {}), **value}
        path = tmp_path / "nan.yaml"
        path.write_text(yaml.safe_dump(spec))
        (name, v), = value.items()
        refused_untouched(tmp_path, ["expand", path, "--root", tmp_path / "results"],
                          rf"nan\.yaml: base\.{key}\.{name} \(line \d+\): must be a finite number, got {v}")


def test_a_tune_block_of_too_many_trials_is_refused_before_expanding(tmp_path: Path) -> None:
    spec = {**ONE, "tune": {"params": {"train.lr": {"log_uniform": [1e-4, 1e-2]}}, "n_trials": 10**9}}
    start = time.perf_counter()
    refused_untouched(tmp_path, ["expand", write_sweep(tmp_path, spec), "--root", tmp_path / "results"],
                      r"one\.yaml.*1000000000 jobs .*> 100000.*--force")
    assert time.perf_counter() - start < 5


BAD_OPTIONS = [
    (["status", "--watch", "--refreshes", "1", "--interval", "nan"], r"--interval.*nan.*finite"),
    (["status", "--watch", "--refreshes", "1", "--interval", "-1"], r"--interval.*-1"),
    (["status", "--watch", "--refreshes", "-1"], r"--refreshes.*-1"),
    (["report", "--seed", "-1"], r"--seed.*-1"),
    (["report", "--n-boot", "-1"], r"--n-boot.*-1"),
    (["status", "--no-such-option"], r"No such option: --no-such-option.*harness status --help"),
    (["status", "--interval", "fast"], r"--interval.*'fast'"),
    (["nosuch"], r"No such command 'nosuch'.*harness --help"),
]


@pytest.mark.parametrize(("args", "match"), BAD_OPTIONS)
def test_bad_option_values_are_one_line(tmp_path: Path, finished: tuple[Path, str], args: list[str], match: str
                                        ) -> None:
    root, _ = finished
    refused_untouched(root, [*args, "--root", root] if args[0] != "nosuch" else args, match)


@pytest.mark.parametrize("samples", ["0", "-1"])
def test_show_needs_at_least_one_sample(tmp_path: Path, finished: tuple[Path, str], samples: str) -> None:
    root, job = finished
    refused_untouched(root, ["show", job, "--root", root, "--samples", samples], rf"--samples.*{samples}")


# -- reports --------------------------------------------------------------------------------------------------------


def test_report_md_escapes_html_from_file_names_and_errors(tmp_path: Path) -> None:
    name = "<img src=x onerror=alert(1)>"
    arrays_file(tmp_path / f"{name}.h5", targets=np.full((40, 1, R, R), np.nan, "f4"))
    root = tmp_path / "results"
    harness(root, "expand", str(data_sweep(tmp_path, {"path": f"{name}.h5", "format": "arrays"}, name="html")))
    assert harness(root, "submit", "--backend", "inline", check=False).returncode == 1
    harness(root, "report")
    markdown = (root / "html" / "report" / "report.md").read_text()
    assert "&lt;img src=x onerror=alert(1)&gt;" in markdown
    assert "<img" not in markdown


# -- caches ---------------------------------------------------------------------------------------------------------


def test_expand_keeps_its_fingerprint_cache_under_the_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HARNESS_DATA_CACHE", raising=False)
    arrays_file(tmp_path / "good.h5")
    sweep = data_sweep(tmp_path, {"path": str(tmp_path / "good.h5"), "format": "arrays"})
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    ok(["expand", sweep, "--root", tmp_path / "results"])
    assert list(work.iterdir()) == []
    assert (tmp_path / "results" / ".cache" / "data" / "fingerprints.json").is_file()
