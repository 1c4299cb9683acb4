"""YAML that cannot hurt (issue 16): duplicate keys, alias bombs and non-UTF-8 files are one line at expand; an
exclude that matches nothing and a sweep without axes are warned about."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from harness.cli import main
from harness.errors import SweepError
from harness.sweep.spec import load_sweep
from tests.helpers import TINY

BASE = yaml.safe_dump({"base": TINY["base"]})


def _expand(root: Path, path: Path):
    return CliRunner().invoke(main, ["expand", str(path), "--root", str(root)])


def test_a_key_given_twice_is_an_error_naming_both_lines(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text("name: dup\nmatrix:\n  model.width: [4]\n  init: [scratch]\n  model.width: [8]\n" + BASE)
    result = _expand(tmp_path / "results", path)
    assert result.exit_code == 2
    assert "key `model.width` is given twice (lines 3 and 5)" in result.output
    assert not (tmp_path / "results").exists()


def test_an_alias_bomb_is_refused_fast_and_small(tmp_path: Path) -> None:
    lines = ["name: bomb", 'a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1},"
              f" *a{i - 1}, *a{i - 1}]" for i in range(1, 10)]
    lines.append("matrix: {seed: *a9}")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(SweepError, match="aliases expand to more than"):
        load_sweep(path)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert seconds < 0.5 and peak < 5e6, (seconds, peak)


def test_a_file_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "latin.yaml"
    path.write_bytes("name: caf\u00e9\n".encode("latin-1"))
    result = _expand(tmp_path / "results", path)
    assert result.exit_code == 2 and "latin.yaml: not UTF-8 text" in result.output
    assert "Traceback" not in result.output


def test_an_exclude_that_matches_nothing_and_an_empty_matrix_are_warned_about(tmp_path: Path) -> None:
    path = tmp_path / "warn.yaml"
    spec = {**TINY, "name": "warn", "exclude": [{"downstream.n_train": 32}, {"downstream.n_train": 8}]}
    path.write_text(yaml.safe_dump(spec))
    result = CliRunner().invoke(main, ["expand", str(path), "--root", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert "exclude.0" in result.stderr and "matches no point of the matrix" in result.stderr
    assert "exclude.1" not in result.stderr
    single = tmp_path / "single.yaml"
    single.write_text(yaml.safe_dump({**TINY, "name": "single", "matrix": {}}))
    result = CliRunner().invoke(main, ["expand", str(single), "--root", str(tmp_path / "r")])
    assert result.exit_code == 0 and "no axes, so the sweep is the one point of `base:`" in result.stderr
