"""Bad arguments and paths a new user's tour broke (issue 28), through the real `harness` command: one line naming
the file or option, the value and the fix, exit status 2, and nothing outside the intended files changed (every file
under the test's folder compared by size, mtime and sha256 before and after). In this process
(``click.testing.CliRunner``) where no job runs; in a subprocess where a job runs or a command could hang.
tests/e2e/test_bad_data.py holds the data files, tests/e2e/test_fuzz.py the generated inputs."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.e2e.refusals import ONE, R, arrays_file, data_sweep, expanded, ok, refused_untouched, snapshot
from tests.helpers import harness, write_sweep


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
        refused_untouched(tmp_path, [*args, "--root", tmp_path / "afile"], r"--root.*afile is a file, not a folder")


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
    (["status", "--no-such-option"], r"No such option.*--no-such-option.*harness status --help"),
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
    rendered = re.sub(r"(?ms)^(`{3,})$.*?^\1$", "", markdown)  # a fenced block shows its text as it is
    assert "<img" not in rendered and rendered.count("```") == 0


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
