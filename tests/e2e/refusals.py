"""Helpers of the bad-input tests (issue 28): run the real `harness` command, check it refused in one line and left
every file as it was; small sweeps and data files."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import yaml
from click.testing import CliRunner

from harness.cli import main
from harness.data.formats import write_pretraining_pdes
from tests.helpers import write_sweep

R = 16
# One scratch job on 16x16 Poisson, width 6, 3 epochs: seconds.
ONE: dict[str, Any] = {
    "name": "one",
    "base": {"resolution": R, "init": "scratch", "model": {"width": 6, "modes": 4},
             "downstream": {"n_train": 8, "n_val": 4, "n_test": 4}, "train": {"epochs": 3, "batch_size": 8}},
}


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


