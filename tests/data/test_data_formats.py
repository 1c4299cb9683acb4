"""harness.data readers: files written in each documented layout load as what was written, in the harness's
axis order and coefficient layout; generated data written to a file reads back with the generated statistics."""

from __future__ import annotations

import numpy as np
import pytest

from harness import pde
from harness.data import FORMATS, parse_spec
from harness.data.formats import READERS, write_arrays
from harness.data.samples import compute_stats as sample_stats
from harness.data.samples import samples_of
from harness.data.source import check_source, load
from harness.pde.fourier import diffusion_symbol, rfft2, solve_with_symbol
from harness.pde.steady_dataset import PDEData, compute_stats, generate
from tests import data_layouts

N, R = 40, 16
SPLITS = {"train": 24, "val": 4, "test": 4}


def _spec(path, fmt, **extra):
    return {"path": str(path), "format": fmt, **extra}


def test_every_format_the_spec_takes_has_a_reader_and_every_reader_a_format() -> None:
    assert tuple(READERS) == FORMATS
    assert parse_spec({"path": "a.h5", "format": "arrays", "normalise": "channel"}).options == {"normalise": "channel"}


def test_tl_scaling_loads_as_written_transposed_to_x_first(tmp_path):
    rng = np.random.default_rng(0)
    fields = rng.standard_normal((N, 2, R, R)).astype("f4")
    tensor = rng.uniform(-1, 1, (N, 5)).astype("f4")
    other = rng.uniform(0.2, 1, (N, 1)).astype("f4")
    spec = _spec(data_layouts.tl_scaling(tmp_path / "ad.h5", fields, tensor, other), "tl-scaling")
    info = check_source(spec, SPLITS, kind="steady")
    assert (info.in_channels, info.out_channels, info.layout.system) == (7, 1, "advection_diffusion")
    s = load(info.spec, "train", 24, seed=3)
    rows = s.indices
    np.testing.assert_array_equal(s.fields[:, 0], fields[rows, 0].swapaxes(1, 2))
    np.testing.assert_array_equal(s.targets[:, 0], fields[rows, 1].swapaxes(1, 2))
    np.testing.assert_array_equal(s.coefficients[:, :5], tensor[rows])
    np.testing.assert_array_equal(s.coefficients[:, 5], 0)
    np.testing.assert_array_equal(s.extras["other"], other[rows])
    assert s.in_channels == 7 and s.channels == pde.COMMON_CHANNELS and s.normalise == "instance"
    assert s.meta["fingerprint"] == info.fingerprint and s.stats is not None


def test_tl_scaling_axes_and_coefficients_mean_what_the_harness_solver_means(tmp_path):
    """A Poisson sample made in the first study's convention (meshgrid xy: rows are y; k11 multiplies the x
    wavenumber along axis 1) solves the harness's own -div(K grad u) = f once loaded: the axes are
    transposed, k11 stays the x entry. With anisotropic K the two conventions would disagree."""
    x = np.arange(R) / R
    xg, yg = np.meshgrid(x, x)  # the study's default indexing: xg varies along axis 1
    k11, k22, k12 = 0.01 * 1.0, 0.01 * 4.0, 0.01 * 0.7
    f = u = 0
    for a, b, amp in ((1, 2, 1.0), (3, -1, 0.5), (0, 2, 0.3)):
        mode = amp * np.sin(2 * np.pi * (a * xg + b * yg))
        f = f + mode
        u = u + mode / (4 * np.pi**2 * (k11 * a * a + k22 * b * b + 2 * k12 * a * b))
    fields = np.stack([f, u])[None].repeat(2, axis=0)
    spec = _spec(data_layouts.tl_scaling(tmp_path / "p.h5", fields, [[k11, k22, k12]] * 2), "tl-scaling")
    s = load(spec, "train", 1, seed=0)
    k = s.coefficients[:, :3].T
    solved = solve_with_symbol(rfft2(s.fields[:, 0].astype(np.float64)), diffusion_symbol(*k, R), R, pin_mean=True)
    np.testing.assert_allclose(solved, s.targets[:, 0], atol=2e-6 * np.abs(u).max())
    swapped = solve_with_symbol(rfft2(s.fields[:, 0].astype(np.float64)), diffusion_symbol(k[1], k[0], k[2], R),
                                R, pin_mean=True)
    assert np.abs(swapped - s.targets[:, 0]).max() > 0.1 * np.abs(u).max()


@pytest.mark.parametrize(("system", "tensor", "common"), [
    ("poisson", [0.01, 0.04, 0.005], [0.01, 0.04, 0.005, 0, 0, 0]),
    ("advection_diffusion", [0.006, 0.02, 0.001, 0.3, -0.4], [0.006, 0.02, 0.001, 0.3, -0.4, 0]),
    ("helmholtz", [0.01, 7.0], [0.01, 0.01, 0, 0, 0, 7.0]),  # the Laplacian's 0.01 fills k11 and k22
])
def test_tl_scaling_coefficients_map_onto_the_common_channels(tmp_path, system, tensor, common):
    fields = np.zeros((3, 2, 8, 8), "f4")
    fields[:, :, 0, 0] = 1.0  # a source and a solution that is not zero (a zero target is refused)
    spec = _spec(data_layouts.tl_scaling(tmp_path / "c.h5", fields, [tensor] * 3), "tl-scaling", system=system)
    s = load(spec, "train", 1, seed=0)
    np.testing.assert_allclose(s.coefficients[0], common, rtol=1e-7)
    assert s.system.tolist() == [pde.SYSTEMS.index(system)]


def test_generated_poisson_written_as_tl_scaling_reads_back_with_generated_statistics(tmp_path):
    gen = generate("poisson", N, resolution=R, seed=1)
    file_fields = np.stack([gen.source, gen.solution], axis=1).swapaxes(2, 3)  # the study stores y first
    spec = _spec(data_layouts.tl_scaling(tmp_path / "g.h5", file_fields, gen.coefficients), "tl-scaling")
    s = load(spec, "train", 32, seed=0)
    np.testing.assert_array_equal(s.fields[:, 0], gen.source[s.indices])
    np.testing.assert_array_equal(s.targets[:, 0], gen.solution[s.indices])
    np.testing.assert_allclose(s.coefficients, gen.coef_common[s.indices], rtol=1e-7)
    subset = PDEData("poisson", gen.source[s.indices], gen.solution[s.indices], gen.coefficients[s.indices],
                         gen.coef_common[s.indices], {k: v[s.indices] for k, v in gen.params.items()})
    expected = compute_stats(subset)
    assert s.stats["median_source_norm"] == expected["median_source_norm"]
    np.testing.assert_allclose(s.stats["coef_scale"], expected["coef_scale"], rtol=1e-7)


def test_samples_of_generated_data_share_the_generated_statistics():
    gen = generate("mixed", 12, resolution=R)
    s = samples_of(gen)
    assert sample_stats(s) == compute_stats(gen)
    assert (s.in_channels, s.out_channels) == (1 + len(pde.COMMON_CHANNELS), 1)


def test_pdebench_darcy_loads_the_coefficient_field_as_input(tmp_path):
    rng = np.random.default_rng(1)
    nu = np.where(rng.random((N, R, R)) < 0.5, 0.1, 1.0).astype("f4")
    sol = rng.random((N, 1, R, R)).astype("f4")
    spec = _spec(data_layouts.darcy(tmp_path / "2D_DarcyFlow_beta1.0_Train.hdf5", nu, sol), "pdebench-darcy")
    info = check_source(spec, SPLITS)
    assert (info.in_channels, info.out_channels, info.layout.normalise) == (1, 1, "channel")
    s = load(info.spec, "train", 24, seed=0)
    np.testing.assert_array_equal(s.fields[:, 0], nu[s.indices])  # PDEBench is x first already
    np.testing.assert_array_equal(s.targets, sol[s.indices])
    assert s.coefficients.shape == (24, 0) and s.in_channels == 1
    rms = np.sqrt(np.mean(np.square(nu[s.indices], dtype=np.float64), axis=(1, 2)))
    assert s.stats == {"field_scale": [float(np.median(rms))], "coef_scale": []}


@pytest.mark.parametrize("suffix", [".h5", ".npz", "-compressed.npz"])
def test_arrays_files_load_as_written(tmp_path, suffix):
    rng = np.random.default_rng(2)
    inputs, targets = rng.standard_normal((N, 3, R, R)).astype("f4"), rng.standard_normal((N, 2, R, R))
    coefficients = rng.standard_normal((N, 4))
    path = tmp_path / f"a{suffix}"
    if suffix == ".h5":
        data_layouts.arrays_h5(path, inputs, targets, coefficients)
    else:
        save = np.savez_compressed if "compressed" in suffix else np.savez
        save(path, inputs=inputs, targets=targets, coefficients=coefficients)
    info = check_source(_spec(path, "arrays"), SPLITS)
    assert (info.in_channels, info.out_channels, info.layout.channels) == (7, 2, ("c0", "c1", "c2", "c3"))
    s = load(info.spec, "test", 4, seed=5)
    np.testing.assert_array_equal(s.fields, inputs[s.indices])
    np.testing.assert_array_equal(s.targets, targets[s.indices].astype("f4"))
    np.testing.assert_array_equal(s.coefficients, coefficients[s.indices])
    assert s.normalise == "channel" and s.stats is None


@pytest.mark.parametrize("suffix", [".h5", ".npz"])
def test_write_arrays_round_trip_of_generated_data(tmp_path, suffix):
    gen = samples_of(generate("helmholtz", N, resolution=R))
    path = write_arrays(tmp_path / f"h{suffix}", gen.fields, gen.targets, gen.coefficients,
                        channels=gen.channels, normalise="instance")
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary left behind
    s = load(_spec(path, "arrays"), "train", 32, seed=0)
    assert s.channels == pde.COMMON_CHANNELS and s.normalise == "instance"
    for name in ("fields", "targets", "coefficients"):
        np.testing.assert_array_equal(getattr(s, name), getattr(gen, name)[s.indices])
    assert load(_spec(path, "arrays", normalise="channel"), "train", 8, seed=0).stats.keys() == \
        {"field_scale", "coef_scale"}


@pytest.mark.parametrize("indexing", ["xy", "ij"])
def test_pretraining_pdes_trajectories_come_x_first_with_their_coefficients(tmp_path, indexing):
    path = tmp_path / "Heat_Adv_Burgers_train_30.h5"
    written = data_layouts.trajectories(path, {"train": 30}, indexing=indexing)["train"]
    spec = _spec(path, "pretraining-pdes")
    info = check_source(spec, {"train": 20, "val": 3}, kind="trajectory")
    assert info.layout.grid == (6, 4) and info.layout.timesteps == 3
    t = load(info.spec, "train", 20, seed=0)
    u = written["u"][t.indices]
    np.testing.assert_array_equal(t.u, u.swapaxes(-1, -2) if indexing == "xy" else u)
    assert t.channels == ("nu", "ax", "ay", "cx", "cy")
    np.testing.assert_array_equal(t.coefficients[:, 1], written["ax"][t.indices])
    assert np.all(np.diff(t.grid[0], axis=0) > 0) and np.all(np.diff(t.grid[1], axis=1) > 0)  # x along axis 0
    np.testing.assert_array_equal(t.t, written["t"])


def test_pretraining_pdes_uses_the_files_own_split_groups(tmp_path):
    path = tmp_path / "both.h5"
    written = data_layouts.trajectories(path, {"train": 12, "valid": 5})
    info = check_source(_spec(path, "pretraining-pdes"), {"train": 12, "val": 5})
    assert info.rows == {"train": 12, "val": 5}
    val = load(info.spec, "val", 5, seed=0)
    assert sorted(val.indices.tolist()) == list(range(5)) and val.meta["location"].endswith("[valid]")
    np.testing.assert_array_equal(val.u, written["valid"]["u"][val.indices].swapaxes(-1, -2))


@pytest.mark.parametrize("fmt", ["arrays", "tl-scaling"])
def test_harness_data_writes_generated_samples_as_a_data_file(tmp_path, fmt):
    from click.testing import CliRunner

    from harness.cli import main

    out = tmp_path / "poisson.h5"
    result = CliRunner().invoke(main, ["data", "poisson", "--n", "12", "--resolution", "8", "--seed", "2", "--out",
                                       str(out), "--format", fmt])
    assert result.exit_code == 0 and f"12 poisson samples ({fmt})" in result.output, result.output
    gen = generate("poisson", 12, resolution=8, seed=2)
    s = load({"path": str(out), "format": fmt, "fractions": {"val": 0.25, "test": 0.25}}, "train", 6, seed=0)
    np.testing.assert_array_equal(s.fields[:, 0], gen.source[s.indices])
    np.testing.assert_array_equal(s.targets[:, 0], gen.solution[s.indices])
    np.testing.assert_allclose(s.coefficients, gen.coef_common[s.indices], rtol=1e-7)
    assert s.normalise == "instance" and s.channels == pde.COMMON_CHANNELS
