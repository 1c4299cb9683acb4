"""harness.data sources: nested disjoint seeded subsets, fingerprints that follow the file, and every bad input
refused in one line naming the file, the key and the fix."""

from __future__ import annotations

import os
import re
import shutil

import h5py
import numpy as np
import pytest

from harness.data import parse_spec
from harness.data.fingerprint import fingerprint
from harness.data.formats import tl_scaling as tl_module
from harness.data.source import check_source, load
from harness.data.subsets import regions
from harness.errors import DataFileError, HarnessError
from tests import data_layouts

R = 8
NEEDS = {"train": 16, "val": 4, "test": 4}


def _tl(path, n=40, *, tensor_rows=None, grid=(R, R), seed=0):
    rng = np.random.default_rng(seed)
    fields = rng.standard_normal((n, 2, *grid)).astype("f4")
    return data_layouts.tl_scaling(path, fields, rng.uniform(0, 1, (tensor_rows or n, 3)))


def _spec(path, fmt="tl-scaling", **extra):
    return {"path": str(path), "format": fmt, **extra}


def _refused(match: str, fn, *args, **kwargs) -> str:
    with pytest.raises(DataFileError, match=match) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message and isinstance(info.value, HarnessError)
    return message


# --- subsets -------------------------------------------------------------------------------------------------

def test_regions_cut_test_val_train_in_order():
    assert regions(100, ["train", "val", "test"], {"val": 0.1, "test": 0.2}) == \
        {"test": (0, 20), "val": (20, 30), "train": (30, 100)}
    assert regions(7, ["train"], {"val": 0.1, "test": 0.1}) == {"train": (0, 7)}


def test_splits_are_nested_in_n_disjoint_across_splits_and_follow_the_seed(tmp_path):
    spec = _spec(_tl(tmp_path / "p.h5", n=100))
    small, large = load(spec, "train", 16, seed=1), load(spec, "train", 64, seed=1)
    assert set(small.indices) < set(large.indices)
    assert np.all(np.diff(large.indices) > 0)  # in the file's row order
    np.testing.assert_array_equal(large.fields[np.isin(large.indices, small.indices)], small.fields)
    val, test = load(spec, "val", 10, seed=1), load(spec, "test", 10, seed=1)
    full_train = load(spec, "train", 80, seed=1)
    parts = [set(full_train.indices), set(val.indices), set(test.indices)]
    assert sum(map(len, parts)) == 100 and set().union(*parts) == set(range(100))
    assert set(load(spec, "train", 16, seed=2).indices) != set(small.indices)
    again = load(spec, "train", 16, seed=1)
    np.testing.assert_array_equal(again.fields, small.fields)


def test_a_file_per_split_gives_each_split_all_its_rows(tmp_path):
    paths = {s: str(_tl(tmp_path / f"_{s}.h5", n=n, seed=i)) for i, (s, n) in
             enumerate({"train": 30, "val": 6, "test": 5}.items())}
    info = check_source({"path": paths, "format": "tl-scaling"}, {"train": 30, "val": 6, "test": 5})
    assert info.rows == {"train": 30, "val": 6, "test": 5} and info.spec["path"] == paths
    test = load(info.spec, "test", 5, seed=0)
    assert test.indices.tolist() == list(range(5)) and test.meta["path"] == paths["test"]
    with h5py.File(paths["test"]) as f:  # all of a file's rows come as written
        np.testing.assert_array_equal(test.fields[:, 0], f["fields"][:, 0].swapaxes(1, 2))


# --- identity ------------------------------------------------------------------------------------------------

def test_fingerprint_changes_with_the_file(tmp_path):
    path = _tl(tmp_path / "p.h5")
    first = fingerprint(path)
    assert fingerprint(path) == first and len(first) == 16
    copy = tmp_path / "copy.h5"
    shutil.copy2(path, copy)  # same bytes, same mtime: the same data
    assert fingerprint(copy) == first
    os.utime(path, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns + 1_000_000))
    touched = fingerprint(path)
    assert touched != first
    _tl(path, seed=1)  # rewritten with other samples, same size
    assert fingerprint(path) not in (first, touched)


def test_fingerprint_is_read_from_the_cache_while_the_file_is_unchanged(tmp_path):
    path = _tl(tmp_path / "p.h5")
    value = fingerprint(path, cache_dir=tmp_path / "cache")
    cache = tmp_path / "cache" / "fingerprints.json"
    cache.write_text(cache.read_text().replace(value, "from-the-cache"))
    assert fingerprint(path, cache_dir=tmp_path / "cache") == "from-the-cache"
    cache.write_text("{not json")  # a broken cache is recomputed, not fatal
    assert fingerprint(path, cache_dir=tmp_path / "cache") == value


def test_load_refuses_a_file_changed_since_expand(tmp_path):
    path = _tl(tmp_path / "p.h5")
    info = check_source(_spec(path), NEEDS)
    assert info.spec["fingerprint"] == info.fingerprint
    load(info.spec, "train", 16, seed=0)
    _tl(path, seed=7)
    message = _refused("changed since its fingerprint", load, info.spec, "train", 16, seed=0)
    assert str(path) in message and "expand the sweep again" in message


def test_load_refuses_a_file_changed_while_it_is_read(tmp_path, monkeypatch):
    path = _tl(tmp_path / "p.h5")
    real_gather = tl_module.gather

    def gather_then_touch(*args):  # the file is written to by someone else mid-read
        real_gather(*args)
        with open(path, "ab") as fh:
            fh.write(b"\0")

    monkeypatch.setattr(tl_module, "gather", gather_then_touch)
    _refused(f"{re.escape(str(path))} changed while it was read", load, _spec(path), "train", 8, seed=0)


# --- bad input -----------------------------------------------------------------------------------------------

def test_missing_file(tmp_path):
    for fn, args in ((check_source, (NEEDS,)), (load, ("train", 4, 0))):
        _refused(r"^downstream.data: .*nope.h5 does not exist: check the path$", fn, _spec(tmp_path / "nope.h5"),
                 *args, where="downstream.data")


def test_file_of_another_format(tmp_path):
    text = tmp_path / "notes.h5"
    text.write_text("not data")
    _refused("is neither HDF5 nor .npz", check_source, _spec(text), NEEDS)
    darcy = data_layouts.darcy(tmp_path / "d.h5", np.ones((5, R, R)), np.ones((5, 1, R, R)))
    message = _refused("has no dataset 'fields'", check_source, _spec(darcy), NEEDS)
    assert "it holds: nu, t-coordinate, tensor" in message and "is the format right?" in message
    cut = _tl(tmp_path / "cut.h5")
    os.truncate(cut, os.path.getsize(cut) // 2)  # a copy that stopped half way
    _refused("cut.h5 cannot be opened as HDF5 .*: is it complete\\?$", check_source, _spec(cut), NEEDS)


def test_missing_dataset_key(tmp_path):
    path = tmp_path / "p.h5"
    with h5py.File(path, "w") as f:
        f["fields"] = np.zeros((40, 2, R, R), "f4")
    _refused(r"p.h5 has no dataset 'tensor' \(it holds: fields\)", check_source, _spec(path), NEEDS)


def test_fields_disagree_on_the_number_of_samples(tmp_path):
    path = _tl(tmp_path / "p.h5", n=40, tensor_rows=39)
    _refused(r"datasets disagree on the number of samples \(fields 40, tensor 39\)", check_source, _spec(path),
             NEEDS)


def test_non_square_grid(tmp_path):
    _refused(r"p.h5: the grid is 6x8: the steady pipeline needs square n x n grids \(resample the data\)", check_source,
             _spec(_tl(tmp_path / "p.h5", grid=(6, 8))), NEEDS)


def test_split_files_must_agree_on_the_grid(tmp_path):
    paths = {"train": str(_tl(tmp_path / "a.h5")), "test": str(_tl(tmp_path / "b.h5", grid=(16, 16)))}
    _refused("disagree on grid", check_source, {"path": paths, "format": "tl-scaling"}, {"train": 4})


def test_more_samples_than_the_file_holds(tmp_path):
    path = _tl(tmp_path / "p.h5", n=40)
    message = _refused(r"n_train = 33 is more than the 32 of its 40 rows in the train region", check_source,
                       _spec(path), {**NEEDS, "train": 33})
    assert "change fractions, or give each split its own file" in message
    check_source(_spec(path, fractions={"val": 0.05, "test": 0.05}), {"train": 36, "val": 2, "test": 2})
    _refused(r"n_test = 41 is more than the 40 rows it holds: ask for fewer", check_source,
             {"path": {"train": str(path), "test": str(_tl(tmp_path / "t.h5"))}, "format": "tl-scaling"},
             {"test": 41})
    _refused("holds no val split: add val: FILE to path", check_source,
             {"path": {"train": str(path)}, "format": "tl-scaling"}, {"train": 8, "val": 2})


def test_a_damaged_chunk_is_refused_at_load(tmp_path):
    path = tmp_path / "z.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("fields", data=np.ones((40, 2, R, R), "f4"), chunks=(1, 2, R, R), compression="gzip")
        f["tensor"] = np.ones((40, 3), "f4")
        chunks = [f["fields"].id.get_chunk_info(i) for i in range(40)]
    with open(path, "r+b") as fh:  # scribble over every chunk: any draw meets one
        for chunk in chunks:
            fh.seek(chunk.byte_offset)
            fh.write(b"\xff" * chunk.size)
    check_source(_spec(path), NEEDS)  # the headers are intact
    _refused("z.h5: reading the train split failed .*: is the file complete\\?$", load, _spec(path), "train", 4,
             seed=0)


def test_nan_or_inf_in_the_samples_drawn(tmp_path):
    path = _tl(tmp_path / "p.h5", n=40)
    spec, sizes = _spec(path), {"train": 32, "val": 4, "test": 4}
    drawn = {split: load(spec, split, n, seed=0).indices.tolist() for split, n in sizes.items()}
    with h5py.File(path, "r+") as f:
        f["fields"][17, 1, 3, 3] = np.nan
    split = next(s for s, rows in drawn.items() if 17 in rows)
    message = _refused(f"the {split} split's targets hold NaN or inf at file row 17 "
                       f"\\(sample {drawn[split].index(17)} of {sizes[split]}\\)", load, spec, split, sizes[split],
                       seed=0)
    assert str(path) in message and "fix or drop that row" in message
    other = next(s for s in sizes if s != split)
    load(spec, other, sizes[other], seed=0)  # the other splits do not hold the bad row


def test_wrong_coefficient_count_or_system(tmp_path):
    path = data_layouts.tl_scaling(tmp_path / "p.h5", np.zeros((40, 2, R, R)), np.zeros((40, 4)))
    _refused("'tensor' has 4 columns; tl-scaling systems have poisson 3, advection_diffusion 5, helmholtz 2",
             check_source, _spec(path), NEEDS)
    _refused("so poisson data, but the spec says system: helmholtz", check_source,
             _spec(_tl(tmp_path / "q.h5"), system="helmholtz"), NEEDS)


def test_trajectories_are_not_steady_data(tmp_path):
    path = tmp_path / "t.h5"
    data_layouts.trajectories(path, {"train": 10})
    _refused(r"^data.format: pretraining-pdes holds trajectory data, this job needs steady data: use tl-scaling, "
             "pdebench-darcy, arrays$", check_source, _spec(path, "pretraining-pdes"), NEEDS, kind="steady")


def test_missing_group_for_a_split(tmp_path):
    path = tmp_path / "t.h5"
    data_layouts.trajectories(path, {"train": 10, "valid": 4})
    _refused("holds no test split: name its group in groups.test", check_source, _spec(path, "pretraining-pdes"),
             {"test": 2})
    _refused(r"has no group 'held' for split val \(groups: train, valid\): fix groups.val", check_source,
             _spec(path, "pretraining-pdes", groups={"val": "held"}), {"val": 2})
    data_layouts.trajectories(path, {"a": 3, "b": 3})
    _refused(r"holds no group for any split \(groups: a, b\): name them in groups", check_source,
             _spec(path, "pretraining-pdes"), {"train": 2})


@pytest.mark.parametrize(("spec", "match"), [
    ({"path": "x.h5", "format": "hdf5"}, r"^d.format: must be one of tl-scaling, pretraining-pdes, pdebench-darcy, "
                                          r"arrays, got 'hdf5'$"),
    ({"path": "x.h5", "format": "tl-scaling", "group": "a"}, r"unknown key\(s\) group for format tl-scaling"),
    ({"format": "arrays"}, "needs path"),
    ({"path": "x.h5", "format": "arrays", "fractions": {"val": 0.6, "test": 0.5}}, "val \\+ test must be < 1"),
    ({"path": "x.h5", "format": "arrays", "normalise": "z"}, "d.normalise: must be one of instance, channel"),
    ({"path": {"train": "a.h5", "valid": "b.h5"}, "format": "arrays"}, "d.path: a mapping must name splits"),
    ({"path": {"train": "a.h5", "test": "a.h5"}, "format": "arrays"}, "splits train, test name the same file"),
])
def test_bad_specs_are_refused_before_any_file_is_opened(spec, match):
    _refused(match, parse_spec, spec, where="d")
