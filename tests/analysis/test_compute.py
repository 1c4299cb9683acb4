"""Compute as an axis: each run's FLOPs from its model's FLOP function and the steps it ran, the compute-optimal
allocation from the joint law (closed form, with pretraining counted, recovered on low-noise sweeps), the fit
diagnostics and the report's word when a sweep cannot support them."""

import dataclasses

import numpy as np
import pytest

from analysis import coverage_optimal
from analysis.compute import ComputeModel, fit_compute_model, run_compute
from analysis.compute_report import analyse_compute, compute_blocks
from analysis.curves import downstream_points, fit_curves
from analysis.diagnostics import diagnose, fit_warning
from analysis.figures.compute_figures import frontier
from analysis.laws import fit_laws
from analysis.load import load_runs
from analysis.optimal import compute_optimal, exponents, optimum
from analysis.sections import fit_summary
from analysis.synthetic import (
    EPOCHS,
    JOINT_SCRATCH,
    PRETRAIN_STEPS,
    joint_runs,
    synthetic_runs,
    write_synthetic_sweep,
)
from harness.data import Spec
from harness.models import TRAIN_PASSES, flops_per_sample

N_TRAINS = (8, 32, 128, 512, 2048)


@pytest.fixture(scope="module")
def joint(tmp_path_factory: pytest.TempPathFactory):
    """A low-noise joint-law sweep (4 sizes, 5 N, 3 seeds, a budget in epochs) whose one scratch run at N = 2048
    stopped after half its steps; loaded, with its curve fits and laws."""
    runs = joint_runs(noise=0.01)
    early = runs.index[(runs["stage"] == "scratch") & (runs["downstream.n_train"] == 2048)][0]
    runs.loc[early, "steps_run"] = runs.loc[early, "steps_run"] // 2
    loaded = load_runs(write_synthetic_sweep(tmp_path_factory.mktemp("c") / "joint", runs))
    fits = fit_curves(loaded.ok, n_boot=100)
    return loaded, fits, fit_laws(loaded.ok, fits, n_boot=100), runs.loc[early, "id"]


def test_flops_follow_the_model_and_the_steps_each_run_recorded(joint) -> None:
    loaded, _, _, early = joint
    table = run_compute(loaded.ok, loaded.plan.jobs).merge(loaded.ok, on="id")
    per_sample = {(w, m): flops_per_sample(w, m, 32) for w, m in {(16, 8), (32, 8)}}
    for _, row in table[table["stage"] == "scratch"].iterrows():
        n = int(row["downstream.n_train"])
        samples = EPOCHS * n // (2 if row["id"] == early else 1)  # half the steps: half the samples seen
        expected = TRAIN_PASSES * samples * flops_per_sample(int(row["model.width"]), int(row["model.modes"]), 32)
        assert row["compute"] == pytest.approx(expected)
        assert row["pretrain_flops"] == 0
    ft = table[(table["stage"] == "finetune") & (table["model.width"] == 32)].iloc[0]
    pretrain_samples = PRETRAIN_STEPS * 128  # the pretraining's default batch of 128 on 32,768 samples
    assert ft["pretrain_flops"] == pytest.approx(TRAIN_PASSES * pretrain_samples * per_sample[(32, 8)])
    assert ft["pretrain_shared"] == len(N_TRAINS)  # the fine-tunings of one size and seed share one pretraining
    assert ft["pretrain_amortised"] == pytest.approx(ft["pretrain_flops"] / len(N_TRAINS))


def test_a_run_whose_data_file_is_gone_counts_no_compute_and_the_others_stand(joint, tmp_path) -> None:
    # the report reads the runs' Parquet; a data-file job's channels are its file's, and a file moved since the run
    # leaves that run's compute unknown rather than failing the report
    loaded = joint[0]
    jobs = list(loaded.plan.jobs)
    i = next(k for k, job in enumerate(jobs) if job.stage == "scratch")
    gone = Spec("arrays", {"train": str(tmp_path / "gone.h5"), "test": str(tmp_path / "gone.h5")}, {})
    jobs[i] = dataclasses.replace(jobs[i], config=dataclasses.replace(
        jobs[i].config, downstream=dataclasses.replace(jobs[i].config.downstream, data=gone)))
    table = run_compute(loaded.ok, jobs).set_index("id")
    assert np.isnan(table.loc[jobs[i].id, "compute"])
    assert table.drop(index=jobs[i].id)["compute"].notna().all()


def test_the_numerical_optimum_is_the_closed_form_and_pretraining_costs_error() -> None:
    law = np.array([list(JOINT_SCRATCH)])
    e, a_coef, a, b_coef, b = JOINT_SCRATCH
    own, c = ComputeModel(1e3, 0.7, 1.0, 0.0), np.geomspace(1e9, 1e14, 6)
    d = a + own.gamma * b
    p_closed = (a * a_coef / (own.gamma * b * b_coef)) ** (1 / d) * (c / own.kappa) ** (b / d)
    p, n, err = optimum(law, own, None, c, (1e4, 1e6))
    np.testing.assert_allclose(p[0], p_closed, rtol=1e-4)
    np.testing.assert_allclose(c, own(p[0], n[0]), rtol=1e-9)  # the whole budget is spent
    assert exponents(law, own)[0] == pytest.approx([b / d, a / d])
    p_pre, _, err_pre = optimum(law, own, ComputeModel(1e6, 1.0, 0.0, 0.0), c, (1e4, 1e6))
    assert (err_pre[0] > err[0]).all() and (p_pre[0] < p[0]).all()  # pretraining eats budget, mostly from P


def test_compute_model_is_exact_on_power_law_flops() -> None:
    p, n = np.meshgrid([1e4, 1e5, 1e6], [8.0, 64, 512])
    model = fit_compute_model(p.ravel(), 50 * p.ravel() ** 0.8 * n.ravel(), n.ravel())
    assert (model.kappa, model.gamma, model.sigma) == pytest.approx((50, 0.8, 1.0)) and model.max_error < 1e-9


def test_low_noise_sweeps_recover_p_star_inside_its_intervals() -> None:
    table = coverage_optimal.coverage_cell(3, draws=3, n_boot=100, noise=0.002)
    assert (table["P* covered"] == 1).all() and (table["N* covered"] == 1).all(), table
    assert (table["P* error"] < 0.03).all(), table
    assert table["95 %"].all()


def test_the_report_allocation_recovers_the_true_law(joint) -> None:
    loaded, fits, laws, _ = joint
    analysis = analyse_compute(loaded, fits, laws)
    rows = analysis.optimal[(analysis.optimal["stage"] == "scratch") & ~analysis.optimal["extrapolated"]]
    assert len(rows) > 5
    own = fit_compute_model(*(analysis.compute.merge(loaded.ok, on="id").query("stage == 'scratch'")[c].to_numpy(float)
                              for c in ("n_params", "compute", "downstream.n_train")))  # fmt: skip
    truth = optimum(np.array([list(JOINT_SCRATCH)]), own, None, rows["compute"].to_numpy(), (1e4, 1e6))[0][0]
    assert ((rows["P_lo"] <= truth) & (truth <= rows["P_hi"])).mean() >= 0.8
    np.testing.assert_allclose(rows["P_opt"], truth, rtol=0.15)
    quantities = set(analysis.law_rows["param"])
    assert {"P_opt_exponent", "N_opt_exponent", "compute (pretraining in full)"} <= quantities
    counted = set(analysis.optimal.loc[analysis.optimal["stage"] == "finetune", "counting"])
    assert counted == {"training", "pretraining amortised", "pretraining in full"}


@pytest.fixture(scope="module")
def short(tmp_path_factory: pytest.TempPathFactory):
    """A sweep of two model sizes and N from 8 to 64 (a budget in steps), loaded, with its curve fits and laws."""
    runs = synthetic_runs(shifts=("id",), n_trains=(8, 16, 32, 64), seeds=(0, 1), zeroshot=False)
    loaded = load_runs(write_synthetic_sweep(tmp_path_factory.mktemp("c") / "short", runs))
    fits = fit_curves(loaded.ok, n_boot=50)
    return loaded, fits, fit_laws(loaded.ok, fits, n_boot=50)


def test_too_few_sizes_for_the_joint_law_are_said_beside_the_section(short) -> None:
    loaded, fits, laws = short
    analysis = analyse_compute(loaded, fits, laws)
    assert analysis.optimal.empty and analysis.compute["compute"].gt(0).all()
    skip = [b.content for b in compute_blocks(analysis, laws) if b.kind == "skip"]
    assert skip == [("No ", "compute-optimal allocation", "", "no joint law err = E + A P^-a + B N^-b could be "
                     "fitted: the joint law needs >= 3 distinct model sizes and N, but got 2 sizes and 4 N")]


def test_a_fit_on_less_than_a_decade_is_flagged_beside_it(short) -> None:
    loaded, fits, laws = short
    diagnostics = diagnose(loaded.ok, fits, laws)
    assert set(fit_summary(fits, diagnostics)["warning"]) == {"N spans 8x, less than a decade"}
    residuals = diagnostics.residuals[diagnostics.residuals["fit"] == "power_law"]
    assert len(residuals) == len(loaded.ok[loaded.ok["stage"].isin(["finetune", "scratch"])])
    assert residuals["log_residual"].abs().max() < 0.3  # 5 % noise around the fitted curves
    assert fit_warning({"b": (5.0, 0.0, 5.0), "a": (0.4, 0.0, 5.0)}, {"N": np.array([8.0, 4096])}) == \
        "b = 5 on its bound 5"  # fmt: skip


def test_the_coverage_script_refuses_bad_options_in_one_line(capsys: pytest.CaptureFixture) -> None:
    assert coverage_optimal.main(["--draws", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--draws 0" in err and "use --draws >= 1" in err


def test_residual_table_has_a_row_per_fitted_point(joint) -> None:
    loaded, fits, laws, _ = joint
    residuals = diagnose(loaded.ok, fits, laws).residuals
    counts = residuals.groupby("fit").size()
    trained = int(loaded.ok["stage"].isin(["finetune", "scratch"]).sum())
    assert counts["power_law"] == counts["joint"] == trained
    joint_res = residuals[residuals["fit"] == "joint"].merge(loaded.ok[["id", "test_rel_l2"]], on="id")
    assert (joint_res["observed"] == joint_res["test_rel_l2"]).all()
    law = {key[2]: fit for (kind, key), fit in laws.fits.items() if kind == "joint"}  # by stage
    by_hand = [np.log(err) - np.log(law[s]["E"] + law[s]["A"] * p ** -law[s]["a"] + law[s]["B"] * n ** -law[s]["b"])
               for s, p, n, err in joint_res[["stage", "n_params", "x", "test_rel_l2"]].itertuples(index=False)]
    assert joint_res["log_residual"].to_numpy() == pytest.approx(by_hand, rel=1e-9, abs=1e-12)
    noiseless = joint_runs(noise=0.0).set_index("id")["test_rel_l2"]  # the same runs on the law itself
    injected = np.log(joint_res["test_rel_l2"].to_numpy() / noiseless[joint_res["id"]].to_numpy())
    assert np.abs(joint_res["log_residual"] - injected).max() < 0.01  # the residual is the 1 % noise put in


def test_a_budget_in_steps_has_no_compute_optimal_n(joint) -> None:
    loaded, _, laws, _ = joint
    pts = downstream_points(loaded.ok).merge(run_compute(loaded.ok, loaded.plan.jobs), on="id")
    fixed = pts.assign(compute=3e3 * pts["n_params"])  # every N trained for the same steps: compute grows with P only
    table, law_rows, skipped = compute_optimal(fixed, laws.fits, laws.group_columns)
    assert table.empty and law_rows.empty
    assert [why for _, why in skipped] == ["compute grows as N^0.00 (a budget in steps): no compute-optimal N"] * 2


def test_the_frontier_keeps_only_points_no_cheaper_run_matches() -> None:
    c = np.array([4.0, 1.0, 2.0, 2.0, 3.0, 5.0])
    err = np.array([0.2, 0.5, 0.4, 0.3, 0.35, 0.1])
    fx, fy = frontier(c, err)
    assert fx.tolist() == [1.0, 2.0, 4.0, 5.0] and fy.tolist() == [0.5, 0.3, 0.2, 0.1]
