"""Trajectory datasets on disk: save/load round trip in the shared checksummed format, the cached split
accessor (a second request reads the file; keys that matter and keys that do not), a failed solve writes
nothing, and `harness data` for the time-dependent systems."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.errors import DataError
from harness.pde import cache as cache_mod
from harness.pde.cache import load, load_time_split, save
from harness.pde.steady_dataset import generate
from harness.pde.time_dataset import TimeData, compute_time_stats, generate_time

KW = {"resolution": 8, "nt": 3, "horizon": 0.3}


@pytest.fixture
def counter(monkeypatch: pytest.MonkeyPatch) -> dict:
    """Counts the trajectory generator calls made by load_time_split."""
    calls = {"n": 0}

    def counting(*args, **kwargs):
        calls["n"] += 1
        return generate_time(*args, **kwargs)

    monkeypatch.setattr(cache_mod, "generate_time", counting)
    return calls


def _equal(a: TimeData, b: TimeData) -> None:
    assert isinstance(b, TimeData) and a.system == b.system and a.stats == b.stats and a.meta == b.meta
    assert np.array_equal(a.u, b.u) and np.array_equal(a.t, b.t) and a.params.keys() == b.params.keys()
    for key in a.params:
        np.testing.assert_array_equal(a.params[key], b.params[key])


def test_save_load_roundtrip_beside_steady_data(tmp_path):
    data = generate_time("mixed_time", 5, **KW)
    data.stats = compute_time_stats(data)
    _equal(data, load(save(data, tmp_path / "t.npz")))
    steady = load(save(generate("poisson", 2, resolution=8), tmp_path / "s.npz"))
    assert steady.source.shape == (2, 8, 8)  # the steady kind still loads as PDEData
    with np.load(tmp_path / "t.npz") as npz:  # the paper's coefficient keys are in the file
        assert {"u", "t", "param_nu", "param_ax", "param_ay", "param_cx", "param_cy"} <= set(npz.files)


def test_second_request_reads_the_cache(tmp_path, counter):
    first = load_time_split("burgers", "train", 4, cache_dir=tmp_path, **KW)
    files = sorted(tmp_path.iterdir())
    assert len(files) == 1 and files[0].name.startswith("burgers-train-n4-r8-t3-")
    second = load_time_split("burgers", "train", 4, cache_dir=tmp_path, **KW)
    assert counter["n"] == 1 and sorted(tmp_path.iterdir()) == files
    _equal(first, second)
    load_time_split("burgers", "train", 4, shift={"nu": [0.001875, 0.00375]}, cache_dir=tmp_path, **KW)
    assert counter["n"] == 1  # the id level asked by range
    load_time_split("burgers", "train", 4, refine=2, cache_dir=tmp_path, **KW)
    assert counter["n"] == 2  # refine changes Burgers data
    load_time_split("heat", "train", 4, refine=2, cache_dir=tmp_path, **KW)
    load_time_split("heat", "train", 4, refine=3, cache_dir=tmp_path, **KW)
    assert counter["n"] == 3  # ... but not heat data


def test_splits_are_distinct_and_train_has_stats(tmp_path):
    train = load_time_split("mixed_time", "train", 6, cache_dir=tmp_path, **KW)
    val = load_time_split("mixed_time", "val", 6, cache_dir=tmp_path, **KW)
    assert not np.array_equal(train.u, val.u) and val.stats is None and train.meta["split"] == "train"
    rms = np.sqrt(np.mean(train.u.astype(np.float64) ** 2, axis=(1, 2, 3)))
    assert train.stats["median_u_norm"] == pytest.approx(float(np.median(rms)))
    nu = train.params["nu"][train.params["system"] != 1]  # heat and burgers have nu, advection not
    assert train.stats["coef_scale"][0] == pytest.approx(float(np.median(nu)))
    assert train.u.dtype == np.float32 and train.u.shape == (6, 3, 8, 8)


def test_corrupt_file_is_regenerated(tmp_path, counter):
    good = load_time_split("advection", "test", 3, cache_dir=tmp_path, **KW)
    (path,) = tmp_path.iterdir()
    path.write_bytes(path.read_bytes()[:100])
    with pytest.warns(UserWarning, match="corrupt data cache file"):
        again = load_time_split("advection", "test", 3, cache_dir=tmp_path, **KW)
    assert counter["n"] == 2
    _equal(good, again)


def test_unstable_solve_writes_nothing(tmp_path):
    with pytest.raises(DataError, match="burgers solve unstable"):
        load_time_split("burgers", "train", 2, shift={"c": [1e6, 1e6]}, cache_dir=tmp_path, **KW)
    assert not any(tmp_path.iterdir())


def test_cli_data_writes_trajectories(tmp_path):
    out = tmp_path / "f.npz"
    result = CliRunner().invoke(main, ["data", "heat", "--n", "4", "--shift", "id", "--resolution", "8",
                                       "--nt", "5", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and "4 heat trajectories of 5 frames at 8x8" in result.output
    data = load(out)
    assert isinstance(data, TimeData) and data.u.shape == (4, 5, 8, 8)
    bad = CliRunner().invoke(main, ["data", "poisson", "--n", "2", "--nt", "5", "--out", str(out)])
    assert bad.exit_code == 2 and "--nt applies to the time-dependent systems" in bad.output
