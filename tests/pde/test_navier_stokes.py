"""The navier_stokes system: the solver against exact solutions and invariants, its time order, its data (levels,
refusals, Zhou et al.'s file layout) and a next_step sweep fine-tuning on it from a heat pretraining.

Vorticity modes: w = cos(2 pi (kx x + ky y)) (and any field on one shell |k| = const, Taylor-Green's among them)
has u . grad w = 0, so it decays as exp(-visc |k|^2 t) with k = 2 pi (kx, ky) the angular wavevector: for w, and
for u, v alike; the energy and enstrophy decay at twice that rate. Taylor-Green, kx = ky = 1, has |k|^2 = 2 (2 pi)^2:
the issue's exp(-2 visc k^2 t) is this law with k = 2 pi the wavenumber per axis (the classical form on [0, 2 pi]^2
with k = 1), not with k = |k|, which would double the rate.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner
from scipy.integrate import simpson

from harness.cli import main
from harness.data.formats import write_pretraining_pdes
from harness.data.source import check_source, load
from harness.errors import DataError, DataFileError
from harness.job import Downstream, Forecast, JobConfig, Model, Pretrain
from harness.models.fno import FNO
from harness.pde import ALL_TIME_SYSTEMS, MAX_STEPS, NS_COEFS, TIME_SHIFT_LEVELS, speed_bound
from harness.pde.cache import load_time_split
from harness.pde.fourier import irfft2, rfft2, spectral_grad
from harness.pde.navier_stokes import forcing_spectrum, grf_spectrum, velocity
from harness.pde.time_dataset import compute_time_stats, generate_time
from harness.pde.time_systems import solve_time
from harness.tasks.pretext import make_pretext
from harness.tasks.time_task import ForecastTask
from tests.helpers import assert_refused_at_expand, cli, harness, results, write_sweep

R = 32
NS_LEVELS = TIME_SHIFT_LEVELS["navier_stokes"]
X, Y = np.meshgrid(np.arange(R) / R, np.arange(R) / R, indexing="ij")
TWO_PI = 2 * math.pi


def _solve(w0: np.ndarray, visc: float, amp: float, t: np.ndarray, **kwargs: object) -> np.ndarray:
    return solve_time("navier_stokes", w0[None], np.array([[visc, amp]]), t, **kwargs)[0]


def _random_vorticity(scale: float = 10.0, seed: int = 1) -> np.ndarray:
    """A GRF initial vorticity scaled up so that the advection matters over a short time (speeds ~1)."""
    return scale * irfft2(grf_spectrum(np.random.default_rng(seed), 1, R), (R, R))[0]


@pytest.mark.parametrize(("w0", "k2"), [
    (np.cos(TWO_PI * (3 * X + 2 * Y)), 13 * TWO_PI**2),  # one Fourier mode
    (2 * TWO_PI * np.sin(TWO_PI * X) * np.sin(TWO_PI * Y), 2 * TWO_PI**2),  # Taylor-Green: u = (sin cos, -cos sin)
    (np.cos(TWO_PI * (3 * X + 4 * Y)) + np.sin(TWO_PI * 5 * X), 25 * TWO_PI**2),  # two modes on one shell |k| = 5
], ids=["mode", "taylor-green", "shell"])
def test_unforced_modes_on_one_shell_decay_exactly_as_exp_minus_visc_k2_t(w0: np.ndarray, k2: float) -> None:
    visc, t = 2e-3, np.linspace(0.0, 1.5, 7)
    w = _solve(w0, visc, 0.0, t, refine=2)
    decay = np.exp(-visc * k2 * t)[:, None, None]
    np.testing.assert_allclose(w, w0 * decay, rtol=0, atol=1e-12 * np.abs(w0).max())
    u0, v0 = velocity(rfft2(w0), R)
    u, v = velocity(rfft2(w), R)
    np.testing.assert_allclose(u, u0 * decay, rtol=0, atol=1e-12 * np.abs(u0).max())
    np.testing.assert_allclose(v, v0 * decay, rtol=0, atol=1e-12 * np.abs(v0).max())
    energy = np.mean(u**2 + v**2, axis=(1, 2))
    np.testing.assert_allclose(energy, energy[0] * np.exp(-2 * visc * k2 * t), rtol=1e-12)
    if k2 == 2 * TWO_PI**2:  # Taylor-Green's own velocity: (sin(2 pi x) cos(2 pi y), -cos(2 pi x) sin(2 pi y))
        np.testing.assert_allclose(u0, np.sin(TWO_PI * X) * np.cos(TWO_PI * Y), atol=1e-14)
        np.testing.assert_allclose(v0, -np.cos(TWO_PI * X) * np.sin(TWO_PI * Y), atol=1e-14)


def test_the_velocity_is_divergence_free_to_round_off_and_its_curl_is_the_vorticity() -> None:
    w = _random_vorticity() + 0.7  # a mean induces no velocity on the periodic square
    u, v = velocity(rfft2(w), R)
    (u_x, u_y), (v_x, v_y) = spectral_grad(u), spectral_grad(v)
    assert np.abs(u_x + v_y).max() < 1e-13 * np.abs(w).max()
    np.testing.assert_allclose(v_x - u_y, w - w.mean(), rtol=0, atol=1e-13 * np.abs(w).max())


def test_the_advection_term_has_its_analytic_sign_and_size() -> None:
    """w = cos(2 pi x) + cos(4 pi y): u = -sin(4 pi y) / (4 pi), v = sin(2 pi x) / (2 pi), so
    w_t = -u . grad w = 1.5 sin(2 pi x) sin(4 pi y) at t = 0 (unforced, visc ~ 0)."""
    w0, dt = np.cos(TWO_PI * X) + np.cos(2 * TWO_PI * Y), 1e-6
    w = _solve(w0, 1e-12, 0.0, np.array([0.0, dt]), refine=1)
    np.testing.assert_allclose((w[1] - w[0]) / dt, 1.5 * np.sin(TWO_PI * X) * np.sin(2 * TWO_PI * Y), rtol=0,
                               atol=1e-5)


def test_the_forced_mode_grows_to_the_steady_state_amp_g_over_visc_k2() -> None:
    """From rest the forcing amp g (one shell, |k|^2 = 2 (2 pi)^2) gives w = amp g (1 - e^(-visc k2 t)) / (visc k2)
    exactly: the forcing's sign, shape and amplitude convention (amp = 0.1: the FNO paper's forcing)."""
    visc, amp, k2, t = 0.01, 0.1, 2 * TWO_PI**2, np.linspace(0.0, 4.0, 9)
    g = np.sin(TWO_PI * (X + Y)) + np.cos(TWO_PI * (X + Y))
    np.testing.assert_allclose(irfft2(forcing_spectrum(R), (R, R)), g, atol=1e-14)
    w = _solve(np.zeros((R, R)), visc, amp, t, refine=2)
    exact = amp * g / (visc * k2) * (1 - np.exp(-visc * k2 * t))[:, None, None]
    np.testing.assert_allclose(w, exact, rtol=0, atol=1e-12)


def test_a_nonlinear_forced_flow_conserves_its_mean_vorticity_and_keeps_the_enstrophy_balance() -> None:
    """d/dt <w^2> / 2 = -visc <|grad w|^2> + amp <g w> (the dealiased advection conserves enstrophy), integrated
    over the frames by Simpson's rule; the solve grid is the stored one (refine 1), so the frames hold all of w."""
    w0 = _random_vorticity() + 0.3
    visc, amp, t = 1e-3, 2.0, np.linspace(0.0, 0.5, 201)
    w = _solve(w0, visc, amp, t, refine=1)
    assert np.abs(w.mean(axis=(1, 2)) - w0.mean()).max() < 1e-13
    assert np.abs(w[-1] - w0).max() > 0.5 * np.abs(w0).max()  # the flow changed: advection is at work
    enstrophy = 0.5 * np.mean((w - w0.mean()) ** 2, axis=(1, 2))
    w_x, w_y = spectral_grad(w)
    g = irfft2(forcing_spectrum(R), (R, R))
    dissipation = simpson(visc * np.mean(w_x**2 + w_y**2, axis=(1, 2)), x=t)
    forcing = simpson(amp * np.mean(g * w, axis=(1, 2)), x=t)
    assert dissipation > 0.05 * enstrophy[0] and abs(forcing) > 0.05 * enstrophy[0]  # both terms matter
    assert abs(enstrophy[-1] - enstrophy[0] - (forcing - dissipation)) < 1e-8 * enstrophy[0]


def test_the_time_error_converges_at_fourth_order() -> None:
    """ETDRK4, one step per frame interval (a Courant limit far above the frames' spacing): the error of the last
    frame against 512 steps falls ~16 times per halving of the step (measured: 14.1, 16.1, 16.1 for 8 -> 64
    steps, relative errors 1.2e-3, 8.7e-5, 5.4e-6, 3.4e-7)."""
    w0, visc, amp, end = _random_vorticity(), 1e-3, 0.5, 0.4
    speed = max(np.abs(f).max() for f in velocity(rfft2(w0), R))
    assert speed * end / 8 * R > 0.5  # the coarsest step is at a Courant number of the order of the solver's

    def last(steps: int) -> np.ndarray:
        return _solve(w0, visc, amp, np.linspace(0.0, end, steps + 1), refine=1, cfl=1e9)[-1]

    reference = last(512)
    errors = [np.linalg.norm(last(n) - reference) / np.linalg.norm(reference) for n in (8, 16, 32, 64)]
    ratios = np.array(errors[:-1]) / np.array(errors[1:])
    assert errors[-1] > 1e-10  # above round-off: the ratios measure the scheme
    assert (ratios > 12).all() and (ratios[1:] > 15).all() and (ratios < 18).all(), (errors, ratios)


def test_unstable_solves_raise_naming_the_coefficients() -> None:
    w0 = _random_vorticity()
    with pytest.raises(DataError, match=r"^navier_stokes solve unstable at t=.*: non-finite values for "
                                        r"visc=1e-09, amp=0\.5; choose a larger visc or a smaller amp$"):
        _solve(w0, 1e-9, 0.5, np.linspace(0.0, 2.0, 3), refine=1, cfl=60)
    with pytest.raises(DataError, match=rf"^navier_stokes solve unstable at t=0: step .* below {2 / MAX_STEPS:g} "
                                        r"\(Courant speed .*\) for visc=1e-05, amp=0\.01; choose a smaller amp"):
        _solve(1e6 * w0, 1e-5, 0.01, np.linspace(0.0, 2.0, 3), refine=1)


def test_generated_data_draw_each_level_and_are_prefix_stable() -> None:
    for level, ranges in NS_LEVELS.items():
        data = generate_time("navier_stokes", 5, shift=level, resolution=16, nt=4, seed=2)
        assert data.u.shape == (5, 4, 16, 16) and data.u.dtype == np.float32 and np.isfinite(data.u).all()
        assert data.channels == NS_COEFS and data.coef_common.shape == (5, 2)
        assert (data.params["system"] == ALL_TIME_SYSTEMS.index("navier_stokes")).all()
        for name, (lo, hi) in ranges.items():
            assert ((lo <= data.params[name]) & (data.params[name] <= hi)).all(), (level, name)
    more = generate_time("navier_stokes", 18, shift=level, resolution=16, nt=4, seed=2)  # the last level
    np.testing.assert_array_equal(more.u[:5], data.u)  # sample i depends on the seed and i, not on n
    w0 = data.u[:, 0].astype(np.float64)
    assert abs(np.sqrt(np.mean(w0**2)) - 0.26) < 0.1 and np.abs(w0.mean(axis=(1, 2))).max() < 1e-6  # the GRF's
    stats = compute_time_stats(more)
    assert stats["coef_scale"] == [float(np.median(more.params[c])) for c in NS_COEFS]


BAD = {
    "visc-zero": ({"visc": [0, 1e-5]}, {}, "navier_stokes visc must be > 0, got [0, 1e-05]"),
    "amp-negative": ({"amp": [-1, 1]}, {}, "navier_stokes amp must be > 0, got [-1, 1]"),
    "amp-nan": ({"amp": [1e-3, float("nan")]}, {}, "navier_stokes range for amp must be two finite numbers"),
    "visc-inf": ({"visc": [1e-5, float("inf")]}, {}, "navier_stokes range for visc must be two finite numbers"),
    "unknown-param": ({"nu": [1, 2]}, {}, "navier_stokes shift must be a level name (id, ood, ood_visc, ood_amp) "
                                          "or a mapping over visc, amp"),
    "cfl-floor": ({"amp": [1e3, 2e3]}, {}, "navier_stokes needs steps of at most "),
    "cfl-floor-horizon": (None, {"horizon": 5e3}, "below the floor horizon / 10000 = 0.5: choose a shorter horizon"),
}


@pytest.mark.parametrize(("shift", "request_", "message"), BAD.values(), ids=list(BAD))
def test_bad_requests_raise_one_line_before_any_solve(tmp_path: Path, shift: dict | None, request_: dict,
                                                     message: str) -> None:
    with pytest.raises(DataError, match=re.escape(message)) as info:
        load_time_split("navier_stokes", "train", 4, shift=shift, resolution=16, nt=4, cache_dir=tmp_path,
                            **request_)
    assert "\n" not in str(info.value) and not any(tmp_path.iterdir())


def test_the_a_priori_speed_bound_holds_for_generated_flows() -> None:
    data = generate_time("navier_stokes", 32, shift="ood_amp", resolution=16, nt=5, seed=4)
    u, v = velocity(rfft2(data.u.astype(np.float64)), 16)
    speed = np.abs(u).max(axis=(2, 3)) + np.abs(v).max(axis=(2, 3))
    assert speed.max() < speed_bound(NS_LEVELS["ood_amp"], 16, 2.0)  # measured: 0.14 against 0.27


def test_a_navier_stokes_file_in_zhous_layout_reads_back_exactly(tmp_path: Path) -> None:
    path = tmp_path / "navier_stokes_train.h5"
    out = CliRunner().invoke(main, ["data", "navier_stokes", "--n", "20", "--resolution", "16", "--nt", "4",
                                    "--seed", "5", "--out", str(path)])
    assert out.exit_code == 0, out.output
    written = generate_time("navier_stokes", 20, resolution=16, nt=4, seed=5)
    with h5py.File(path) as f:  # their layout: a group per split, the five coefficients zero, visc and amp
        group = f["train"]
        assert set(group) == {"u", "x", "t", "nu", "ax", "ay", "cx", "cy", "visc", "amp"}
        assert all((group[c][:] == 0).all() for c in ("nu", "ax", "ay", "cx", "cy"))
        np.testing.assert_array_equal(group["visc"][:], written.params["visc"])
    spec = {"path": str(path), "format": "pretraining-pdes"}
    info = check_source(spec, {"train": 16})
    assert info.layout.channels == NS_COEFS and info.layout.system == "navier_stokes"
    for split, n in info.rows.items():
        read = load(info.spec, split, n, seed=0)
        np.testing.assert_array_equal(read.u, written.u[read.indices])
        np.testing.assert_array_equal(read.coefficients, written.coef_common[read.indices])
        np.testing.assert_array_equal(read.t, written.t)
        assert read.channels == NS_COEFS
    # Their files without the five zeros read the same; visc without amp is refused.
    bare = tmp_path / "bare.h5"
    with h5py.File(path) as f, h5py.File(bare, "w") as g:
        for name in ("u", "x", "t", "visc", "amp"):
            g.create_dataset(f"train/{name}", data=f["train"][name][:])
    assert check_source({**spec, "path": str(bare)}, {"train": 16}).layout.channels == NS_COEFS
    with h5py.File(bare, "a") as g:
        del g["train/amp"]
    with pytest.raises(DataFileError, match=r"bare\.h5\[train\]: holds visc but not amp: a Navier-Stokes group "
                                            r"holds both visc and amp$"):
        check_source({**spec, "path": str(bare)}, {"train": 16})
    with pytest.raises(DataFileError, match=r"coefficients must be \(N, 2\) in the order visc, amp"):
        write_pretraining_pdes(tmp_path / "bad.h5", written.u, np.zeros((20, 5)), written.t, channels=NS_COEFS)


W, NT, N = 2, 6, 8
TASK = {"task": "next_step", "time_window": W, "nt": NT, "horizon": 2.0, "resolution": 16,
        "model": {"width": 4, "modes": 4}}
PRETRAIN = {"system": "heat", "shift": "id", "strategy": "supervised", "n_train": N, "n_val": 4, "n_test": 4,
            "train": {"steps": 6, "lr": 3.0e-3, "batch_size": 4}}


def test_the_objectives_on_navier_stokes_take_its_two_coefficient_channels_scaled_by_the_id_maxima() -> None:
    x, y = torch.randn(3, NT, 16, 16), torch.tensor([[1e-5, 1e-2], [5e-6, 2e-3], [2e-5, 4e-2]])
    scaled = y / torch.tensor([1e-5, 1e-2])  # the id level's upper ends
    config = JobConfig(16, 0, Model(4, 4), forecast=Forecast("next_step", W, NT, 2.0, unroll=0),
                       downstream=Downstream(system="navier_stokes"))
    inputs, target = ForecastTask(config).objective("sse").view(x, y, torch.Generator().manual_seed(0))
    assert inputs.shape == (3, W + 2, 16, 16) and target.shape == (3, 1, 16, 16)
    torch.testing.assert_close(inputs[:, W:, 5, 9], scaled)
    pretext = make_pretext(Pretrain(strategy="coefficient"), W, np.linspace(0.0, 2.0, NT), NS_COEFS)
    inputs, target = pretext.view(x, y, torch.Generator().manual_seed(0))
    assert inputs.shape == (3, W + 2, 16, 16) and (inputs[:, W:] == 0).all()
    torch.testing.assert_close(target, scaled)
    assert pretext.build_model({"width": 4, "modes": 4}, 16)(inputs).shape == (3, 2)


def _sweep(name: str, matrix: dict, **base: object) -> dict:
    return {"name": name, "base": {**TASK, "init": "pretrained", "pretrain": PRETRAIN,
                                   "train": {"steps": 8, "lr": 3.0e-3, "batch_size": 4},
                                   "downstream": {"system": "navier_stokes", "shift": "id", "n_train": N, "n_val": 4,
                                                  "n_test": 4}, **base}, "matrix": matrix}


@pytest.mark.slow
def test_next_step_fine_tunes_on_navier_stokes_from_a_heat_pretraining_end_to_end(tmp_path: Path) -> None:
    """Generated NS and a file of NS trajectories (Zhou's layout, written by `harness data`), from scratch and
    from a heat pretraining: the lifting (5 coefficient channels there, 2 here) is re-initialised, the rest
    loaded."""
    path = tmp_path / "ns.h5"
    out = CliRunner().invoke(main, ["data", "navier_stokes", "--n", "40", "--resolution", "16", "--nt", str(NT),
                                    "--out", str(path)])
    assert out.exit_code == 0, out.output
    matrix = {"init": ["scratch", "pretrained"],
              "downstream.data": [None, {"path": path.name, "format": "pretraining-pdes"}]}
    sweep = write_sweep(tmp_path, _sweep("ns", matrix))
    root = tmp_path / "results"
    cli(root, "expand", str(sweep))
    harness(root, "submit", str(sweep), "--backend", "inline")
    table = results(root, "ns")
    assert len(table) == 5 and set(table["status"]) == {"ok"}, table[["stage", "status", "error"]]
    pretrain = table[table["stage"] == "pretrain"].iloc[0]
    assert pretrain["n_params"] == FNO(width=4, modes=4, in_channels=W + 5).num_params()
    down = table[table["stage"] != "pretrain"]
    assert (down["downstream.system"] == "navier_stokes").all()  # the file is labelled by its coefficients
    assert (down["n_params"] == FNO(width=4, modes=4, in_channels=W + 2).num_params()).all()
    assert set(down[down["stage"] == "finetune"]["transferred"]) == {"head,pointwise,spectral"}
    assert (down["rollout_step_rel_l2"].map(json.loads).map(len) == NT - W).all()
    assert np.isfinite(down["test_rel_l2"]).all()
    cli(root, "report", "ns", "--n-boot", "20")
    assert "navier_stokes" in (root / "ns" / "report" / "report.md").read_text()


@pytest.mark.parametrize(("case", "change", "message"), [
    ("zeroshot", {"init": "zeroshot"}, r"base\.init \(line \d+\) at point \(base\): init zeroshot evaluates the "
     r"pretrained model as it is, but a model on heat takes the coefficient channels nu, ax, ay, cx, cy and one on "
     r"navier_stokes visc, amp: use init pretrained"),
    ("augment", {"train": {"steps": 8, "augment": "shift"}}, r"train\.augment .*: augment 'shift' does not apply "
     r"to navier_stokes: its forcing g\(x \+ y\) is invariant under shifts along \(1, -1\) only.*; choose one of "
     r"none, noise$"),
    # scratch: a heat pretraining over this horizon is refused first, its solutions decaying to zeros
    ("cfl-floor", {"horizon": 3000.0, "nt": 6, "init": "scratch"}, r"base\.horizon \(line \d+\) at point "
     r"\(base\): navier_stokes needs steps of at most .* below the floor horizon / 10000 = 0\.3: choose a "
     r"shorter horizon"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_what_navier_stokes_cannot_run_is_refused_at_expand(tmp_path: Path, case: str, change: dict,
                                                           message: str) -> None:
    sweep = tmp_path / "bad.yaml"
    sweep.write_text(yaml.safe_dump(_sweep("bad", {}, **change)))
    assert_refused_at_expand(sweep, message)
