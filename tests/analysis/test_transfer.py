"""Transfer scaling laws: the effective-data law and the joint law recover known parameters inside their bootstrap
intervals (and exclude wrong ones), on plain arrays and through the report's path from summary rows."""

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from analysis.figures import fit_curves
from analysis.figures.law_figures import data_transferred, joint_law
from analysis.laws import fit_laws
from analysis.load import ReportError
from analysis.powerlaw import fit
from analysis.synthetic import synthetic_runs
from analysis.transfer import effective_data, fit_joint, fit_transfer

D_F = np.array([8.0, 16, 32, 64, 128, 256, 512])
P = np.array([1e4, 4e4, 1.6e5, 6.4e5, 2.56e6])
K, ALPHA, BETA = 0.5, 0.6, 0.3  # D_T = K D_F^ALPHA P^BETA
E, A, A_EXP, B, B_EXP = 0.002, 0.3, 0.3, 2.0, 0.5  # err = E + A P^-A_EXP + B N^-B_EXP
SIZES = ((8, 4), (16, 4), (16, 8), (32, 8), (32, 16))  # about 17K to 4.2M parameters


def _grid(seeds: int = 3) -> tuple[np.ndarray, ...]:
    d_f, p, s = np.meshgrid(D_F, P, np.arange(seeds), indexing="ij")
    return d_f.ravel(), p.ravel(), s.ravel()


def _inside(fit_, name: str, value: float) -> bool:
    lo, hi = fit_.ci(name)
    return lo <= value <= hi


def _coverage(fit_one, truth: np.ndarray, wrong: np.ndarray, trials: int = 20) -> tuple[np.ndarray, ...]:
    """Over noisy trials: how often each true parameter / each wrong value lies inside its interval, and the median
    interval width."""
    hits, false_hits, widths = np.zeros(len(truth)), np.zeros(len(truth)), []
    for trial in range(trials):
        law = fit_one(np.random.default_rng(trial), trial)
        assert law.converged, law.message
        hits += (law.lo <= truth) & (truth <= law.hi)
        false_hits += (law.lo <= wrong) & (wrong <= law.hi)
        widths.append(law.hi - law.lo)
    return hits / trials, false_hits / trials, np.median(widths, axis=0)


def test_transfer_law_recovers_known_k_alpha_beta_inside_narrow_intervals() -> None:
    d_f, p, _ = _grid()

    def fit_one(rng: np.random.Generator, trial: int):
        d_t = K * d_f**ALPHA * p**BETA * np.exp(rng.normal(0, 0.1, d_f.size))
        return fit_transfer(d_f, p, d_t, n_boot=200, seed=trial)

    covered, wrong, width = _coverage(fit_one, np.array([K, ALPHA, BETA]), np.array([2 * K, ALPHA + 0.1, BETA - 0.1]))
    assert (covered >= 0.8).all(), covered
    assert (wrong <= 0.1).all(), wrong  # a wrong value is (nearly) never inside: the test can fail
    assert width[1] < 0.2 and width[2] < 0.05, width


def test_transfer_law_without_size_spread_leaves_beta_unfitted_and_too_little_data_is_an_error() -> None:
    d_t = K * D_F**ALPHA * 1e5**BETA
    law = fit_transfer(D_F, np.full_like(D_F, 1e5), d_t, n_boot=50)
    assert law["alpha"] == pytest.approx(ALPHA, abs=1e-6) and np.isnan(law["beta"]) and np.isnan(law.ci("beta")[0])
    with pytest.raises(ReportError, match="positive D_T at >= 2 distinct D_F"):
        fit_transfer(D_F, np.full_like(D_F, 1e5), -d_t)


def test_joint_law_recovers_known_parameters_inside_its_intervals() -> None:
    n, p = (v.ravel() for v in np.meshgrid(4.0 ** np.arange(2, 8), P, indexing="ij"))  # N = 16 ... 16384

    def fit_one(rng: np.random.Generator, trial: int):
        err = (E + A * p**-A_EXP + B * n**-B_EXP) * np.exp(rng.normal(0, 0.03, n.size))
        return fit_joint(p, n, err, n_boot=200, seed=trial)

    truth = np.array([E, A, A_EXP, B, B_EXP])
    # E and A trade off: only their coverage is tested; so do A and a, which skews a's interval upward (0.3 above
    # the truth is inside in about 15 % of trials, 0.4 above in about 3 %)
    wrong = truth + np.array([0.0, 0.0, 0.4, 0.4, 0.05])
    covered, false_hits, width = _coverage(fit_one, truth, wrong)
    assert (covered >= 0.8).all(), covered
    assert (false_hits[2:] <= 0.1).all(), false_hits
    assert width[2] < 0.4 and width[4] < 0.05, width
    with pytest.raises(ReportError, match="needs >= 3 distinct model sizes"):
        fit_joint(p[p < 5e4], n[p < 5e4], np.full((p < 5e4).sum(), 0.1))


def test_effective_data_inverts_the_scratch_fit_and_is_nan_below_its_floor() -> None:
    n = np.tile(D_F * 8, 2)
    scratch = fit(n, 2.0 * n**-0.5 + 0.01, n_boot=20)
    d_e, boot = effective_data(scratch, np.array([0.2, 0.05, 0.005]))
    assert d_e[:2] == pytest.approx([(0.19 / 2) ** -2, (0.04 / 2) ** -2], rel=1e-3)
    assert np.isnan(d_e[2]) and boot.shape == (20, 3) and np.isnan(boot[:, 2]).all()


@pytest.fixture(scope="module")
def law_runs() -> pd.DataFrame:
    """Summary rows whose scratch errors follow the joint law and whose fine-tuned errors are those of scratch at
    D_F + D_T, with D_T = K D_F^ALPHA P^BETA (2 % noise)."""
    runs = synthetic_runs(sizes=SIZES, shifts=("id",), n_trains=(8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384),
                          seeds=(0, 1, 2), zeroshot=False)  # fmt: skip
    p, n = runs["n_params"].astype(float), runs["downstream.n_train"].astype(float)
    d_t = K * n**ALPHA * p**BETA

    def scratch(samples: pd.Series) -> pd.Series:
        return E + A * p**-A_EXP + B * samples**-B_EXP

    noise = np.exp(np.random.default_rng(4).normal(0, 0.02, len(runs)))
    err = np.where(runs["stage"] == "scratch", scratch(n), scratch(n + d_t)) * noise
    return runs.assign(test_rel_l2=np.where(runs["stage"] == "pretrain", runs["test_rel_l2"], err))


def test_laws_from_summary_rows_recover_the_transfer_and_joint_parameters(law_runs: pd.DataFrame) -> None:
    fits = fit_curves(law_runs, n_boot=300)
    laws = fit_laws(law_runs, fits, n_boot=300)
    ft = law_runs[law_runs["stage"] == "finetune"]
    transfer = laws.get("data_transferred", ft)
    assert transfer is not None and transfer.converged
    assert _inside(transfer, "alpha", ALPHA) and _inside(transfer, "beta", BETA), (transfer.values, transfer.lo)
    assert np.diff(transfer.ci("alpha"))[0] < 0.15 and np.diff(transfer.ci("beta"))[0] < 0.15
    assert not _inside(transfer, "alpha", ALPHA + 0.15)
    scratch = laws.get("joint", law_runs[law_runs["stage"] == "scratch"])
    for name, true in zip(("E", "A", "a", "B", "b"), (E, A, A_EXP, B, B_EXP), strict=True):
        assert _inside(scratch, name, true), (name, scratch[name], scratch.ci(name))
    table = laws.table
    assert set(table["law"]) == {"data_transferred", "joint"} and set(table["stage"]) == {"finetune", "scratch"}
    row = table[(table["law"] == "data_transferred") & (table["param"] == "alpha")].iloc[0]
    assert (row["value"], row["lo"], row["hi"]) == (transfer["alpha"], *transfer.ci("alpha"))
    pts = laws.points
    assert len(pts) == len(ft) and (pts["use"] == "ok").mean() > 0.9
    assert pts["extrapolated"].any() and (pts.loc[pts["d_e"] > pts["scratch_n_max"], "extrapolated"]).all()
    ok = pts[pts["use"] == "ok"]
    np.testing.assert_allclose(ok["d_t"], ok["d_e"] - ok["d_f"])


def test_law_tables_are_deterministic_and_figures_draw(law_runs: pd.DataFrame) -> None:
    fits = fit_curves(law_runs, n_boot=50)
    one, two = fit_laws(law_runs, fits, n_boot=50, seed=5), fit_laws(law_runs, fits, n_boot=50, seed=5)
    assert one.table.to_csv() == two.table.to_csv()
    assert one.table.to_csv() != fit_laws(law_runs, fits, n_boot=50, seed=6).table.to_csv()
    for draw in (data_transferred, joint_law):
        result = draw(law_runs, fits, one)
        assert result.figure is not None, result.skip
        ax = next(a for a in result.figure.axes if a.get_title())
        assert ax.get_xscale() == "log" and len(ax.get_lines()) > 5
        fig = result.figure
        renderer = FigureCanvasAgg(fig).get_renderer()
        fig.draw_without_rendering()  # the constrained layout: every title stays inside the figure
        for text in [fig._suptitle, *(a.title for a in fig.axes if a.get_title())]:
            box = text.get_window_extent(renderer)
            assert box.x0 >= 0 and box.x1 <= fig.bbox.width, text.get_text()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(label.startswith("scratch law: a=") for label in labels)
    two_sizes = law_runs[law_runs["model.width"].isin([8, 16]) & (law_runs["model.modes"] == 4)]
    assert "needs >= 3 distinct model sizes" in joint_law(two_sizes).skip
