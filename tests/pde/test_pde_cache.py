"""harness.pde caching and splits: a second request is a file read, corrupt files are detected and
regenerated with identical data, splits are independent draws, training splits carry their statistics."""

from __future__ import annotations

import numpy as np
import pytest

from harness import pde
from harness.errors import DataError
from harness.pde import cache as cache_mod
from harness.pde.cache import load, load_split, resolve_cache_dir, save
from harness.pde.steady_dataset import PDEData, compute_stats, generate

R = 16


@pytest.fixture
def counter(monkeypatch: pytest.MonkeyPatch) -> dict:
    """Counts the generator calls made by load_split."""
    calls = {"n": 0}

    def counting(*args, **kwargs):
        calls["n"] += 1
        return generate(*args, **kwargs)

    monkeypatch.setattr(cache_mod, "generate", counting)
    return calls


def _equal(a: PDEData, b: PDEData) -> None:
    assert a.system == b.system and a.stats == b.stats
    for name in ("source", "solution", "coefficients", "coef_common"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert a.params.keys() == b.params.keys()
    for key in a.params:
        np.testing.assert_array_equal(a.params[key], b.params[key])


def test_save_load_roundtrip(tmp_path):
    data = generate("mixed", 5, resolution=R)
    data.stats = compute_stats(data)
    path = save(data, tmp_path / "sub" / "mixed.npz")
    back = load(path)
    _equal(data, back)
    assert back.meta == data.meta and back.channels == pde.COMMON_CHANNELS
    assert [p.name for p in path.parent.iterdir()] == ["mixed.npz"]


def test_second_request_reads_the_cache(tmp_path, counter):
    first = load_split("poisson", "train", 6, resolution=R, cache_dir=tmp_path)
    files = list(tmp_path.iterdir())
    second = load_split("poisson", "train", 6, resolution=R, cache_dir=tmp_path)
    assert counter["n"] == 1 and list(tmp_path.iterdir()) == files and len(files) == 1
    _equal(first, second)
    load_split("poisson", "train", 6, coef_range=[1, 5], resolution=R, cache_dir=tmp_path)
    assert counter["n"] == 1  # the same data asked by range instead of level name
    load_split("poisson", "train", 7, resolution=R, cache_dir=tmp_path)
    assert counter["n"] == 2


def test_cache_dir_from_environment(tmp_path, monkeypatch, counter):
    monkeypatch.setenv("HARNESS_DATA_CACHE", str(tmp_path / "env-cache"))
    load_split("helmholtz", "val", 3, resolution=R)
    assert len(list((tmp_path / "env-cache").glob("helmholtz-val-n3-r16-*.npz"))) == 1
    assert resolve_cache_dir() == tmp_path / "env-cache"


@pytest.mark.parametrize("damage", ["flip-bytes", "truncate", "empty"])
def test_corrupt_cache_is_warned_and_regenerated(tmp_path, counter, damage: str):
    good = load_split("advection_diffusion", "train", 5, resolution=R, cache_dir=tmp_path)
    (path,) = tmp_path.iterdir()
    raw = bytearray(path.read_bytes())
    if damage == "flip-bytes":
        middle = len(raw) // 2
        raw[middle:middle + 8] = bytes(b ^ 0xFF for b in raw[middle:middle + 8])
    elif damage == "truncate":
        raw = raw[: len(raw) // 3]
    else:
        raw = bytearray()
    path.write_bytes(bytes(raw))
    with pytest.warns(UserWarning, match=f"corrupt data cache file {path}") as record:
        again = load_split("advection_diffusion", "train", 5, resolution=R, cache_dir=tmp_path)
    assert len(record) == 1 and "\n" not in str(record[0].message)
    assert counter["n"] == 2
    _equal(good, again)
    _equal(good, load(path))  # the regenerated file is whole again


def test_checksum_catches_silently_changed_values(tmp_path):
    data = generate("poisson", 3, resolution=R)
    path = save(data, tmp_path / "p.npz")
    with np.load(path) as npz:
        entries = {k: npz[k] for k in npz.files}
    entries["solution"] = entries["solution"] * 1.0001
    np.savez(path, **entries)  # a valid zip with wrong numbers
    with pytest.raises(DataError, match="checksum mismatch"):
        load(path)


def test_splits_are_distinct_draws_and_train_has_stats(tmp_path):
    train = load_split("poisson", "train", 8, resolution=R, cache_dir=tmp_path)
    val = load_split("poisson", "val", 8, resolution=R, cache_dir=tmp_path)
    test = load_split("poisson", "test", 8, resolution=R, cache_dir=tmp_path)
    assert not np.array_equal(train.source, val.source) and not np.array_equal(val.source, test.source)
    assert val.stats is None and test.stats is None
    stats = train.stats
    rms = np.sqrt(np.mean(train.source.astype(np.float64) ** 2, axis=(1, 2)))
    assert stats["median_source_norm"] == pytest.approx(float(np.median(rms)))
    assert len(stats["coef_scale"]) == 6 and stats["coef_scale"][3:] == [0.0, 0.0, 0.0]
    assert stats["coef_scale"][0] == pytest.approx(float(np.median(np.abs(train.coefficients[:, 0]))))
    smaller = load_split("poisson", "train", 4, resolution=R, cache_dir=tmp_path)
    assert np.array_equal(smaller.solution, train.solution[:4])  # nested training subsets


def test_mixed_stats_use_the_samples_that_have_each_channel(tmp_path):
    train = load_split("mixed", "train", 9, resolution=R, cache_dir=tmp_path)
    scale = train.stats["coef_scale"]
    omega = train.coef_common[train.params["system"] == 2, 5]
    assert scale[5] == pytest.approx(float(np.median(omega))) and all(s > 0 for s in scale)


def test_bad_split_name(tmp_path):
    with pytest.raises(DataError,
                       match="unknown split 'dev': choose one of train, val, test"):
        load_split("poisson", "dev", 4, resolution=R, cache_dir=tmp_path)
