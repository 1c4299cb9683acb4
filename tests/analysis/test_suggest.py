"""`harness suggest`'s ranking: targets named as the claims name them, the linearised interval width against the
bootstrap's, picks that beat chance on sweeps with known laws, the budget kept, bad input refused in one line."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from analysis.claims import fit_claims, optimum_claims
from analysis.compute import run_compute
from analysis.curves import downstream_points, fit_curves
from analysis.laws import fit_laws
from analysis.load import ReportError
from analysis.multipliers import small_n_multipliers
from analysis.optimal import decade_optima
from analysis.suggest import TARGETS, Curves, pick, resolve, width
from analysis.suggest_check import check, check_optimum
from analysis.synthetic import frame_jobs, joint_runs, synthetic_runs, write_synthetic_sweep
from harness.cli import main
from harness.models import count_params

SCRATCH_B = "b.scratch.poisson.id.w16m4"


@pytest.fixture(scope="module")
def frame():
    return synthetic_runs(shifts=("id",), sizes=((16, 4),), n_trains=(8, 32, 128, 512, 2048), seeds=(0, 1, 2),
                          zeroshot=False, noise=0.1)  # fmt: skip


def test_targets_are_named_as_the_claims_name_them(frame):
    fits = fit_curves(frame, n_boot=50)
    claims = set(fit_claims(fits, small_n_multipliers(frame, fits, n_boot=50))["id"])
    ours = set().union(*(kind.claims(Curves.of(frame, fits)) for kind in TARGETS))
    assert {c for c in claims if c.startswith("b.")} == {c for c in ours if c.startswith("b.")} == {
        SCRATCH_B, "b.finetune.poisson.id.w16m4"}
    assert {c for c in claims if c.startswith("multfit.")} <= ours
    assert "multfit.poisson.id.w16m4.n8" in ours


def test_the_linearised_width_is_the_bootstraps(frame):
    """On a curve far from its bounds, 2 t sd from the Fisher information is the residual bootstrap's width."""
    fits = fit_curves(frame, n_boot=1000)
    row = fits.table.set_index("stage").loc["scratch"]
    resolved = resolve(SCRATCH_B, frame, fits)
    assert width(resolved.value, resolved.designs) == pytest.approx(row["b_hi"] - row["b_lo"], rel=0.25)


def test_picks_keep_the_budget_and_prefer_cheap_information(frame):
    resolved = resolve(SCRATCH_B, frame, fit_curves(frame, n_boot=0))
    # the largest N costs 10 units, the rest 1: with 3.5 units no pick is the expensive one
    picks = pick(resolved, lambda i, n, s: 10.0 if n > 2048 else 1.0, 3.5)
    assert len(picks) == 3 and all(p.n <= 2048 for p in picks)
    widths = [width(resolved.value, resolved.designs)] + [p.width for p in picks]
    assert np.all(np.diff(widths) < 0) and all(0 < p.shrinkage < 1 for p in picks)
    free = pick(resolved, lambda i, n, s: 1.0, 10.0, k=2)
    assert len(free) == 2 and free[0].n == 8192  # unconstrained, beyond the grid where the floor is pinned
    assert len({(p.n, p.seed) for p in pick(resolved, lambda i, n, s: 1.0, 6.0)}) == 6  # never the same run twice


def test_suggested_runs_narrow_the_interval_more_than_random_ones():
    """The issue's criterion on few draws (``python -m analysis.suggest_check`` runs 200)."""
    result = check(SCRATCH_B, draws=6, k=4, n_boot=100)
    assert result["picked"] < result["uniform"] and result["better"] >= 0.5


def test_an_unknown_target_or_a_curve_too_small_to_fit_is_one_line(frame, tmp_path: Path):
    fits = fit_curves(frame, n_boot=0)
    with pytest.raises(ReportError, match=r"--target b\.scratch\.poison: no such target .* e\.g\. b\.scratch\.poisson"):
        resolve("b.scratch.poison", frame, fits)
    small = synthetic_runs(shifts=("id",), sizes=((16, 4),), n_trains=(8, 32), seeds=(0,), zeroshot=False)
    with pytest.raises(ReportError, match="2 run.* too few to fit"):
        resolve(SCRATCH_B, small, fit_curves(small, n_boot=0))
    folder = write_synthetic_sweep(tmp_path / "synthetic", small)
    for args, words in ((["--target", SCRATCH_B, "--budget", "1"], "too few to fit"),
                        (["--target", "b.nothing", "--budget", "1"], "--target b.nothing: no such target"),
                        (["--target", SCRATCH_B, "--budget", "0"], "'--budget': 0 is not a finite number > 0")):
        result = CliRunner().invoke(main, ["suggest", "synthetic", "--root", str(tmp_path), *args])
        assert result.exit_code == 2 and words in result.output and len(result.output.strip().splitlines()) == 1
    assert not (folder / "suggest").exists()


OPTIMUM = "popt.scratch.poisson.id.c1e11"


@pytest.fixture(scope="module")
def joint():
    runs = joint_runs(seeds=(0, 1, 2), noise=0.05)
    runs = runs[runs["stage"] == "scratch"].reset_index(drop=True)
    return runs, frame_jobs(runs)


def test_the_compute_optimal_size_is_a_target_named_and_valued_as_its_claim(joint):
    """popt ids are those of claims.csv; log P* from the design's parameters is the claim's value, and on a law far
    from its bounds mid-range the linearised width is the bootstrap's (the ends, near E's bound 0, are not)."""
    runs, jobs = joint
    fits = fit_curves(runs, n_boot=0)
    laws = fit_laws(runs, fits, n_boot=1000)
    pts = downstream_points(runs).merge(run_compute(runs, jobs), on="id")
    claims = {c["id"]: c for c in optimum_claims(decade_optima(pts, laws.fits, laws.group_columns), laws.group_columns)}
    ours = {cid for kind in TARGETS for cid in kind.claims(Curves.of(runs, fits, jobs)) if cid.startswith("popt")}
    assert ours == set(claims) == {f"popt.scratch.poisson.id.c1e{k}" for k in (10, 11, 12)}
    assert not any(c.startswith("popt") for kind in TARGETS for c in kind.claims(Curves.of(runs, fits)))  # no plan
    resolved = resolve(OPTIMUM, runs, fits, jobs)
    claim = claims[OPTIMUM]
    assert math.exp(resolved.value([resolved.designs[0].params])) == pytest.approx(claim["value"], rel=1e-9)
    assert width(resolved.value, resolved.designs) == pytest.approx(math.log(claim["hi"] / claim["lo"]), rel=0.25)


def test_compute_optimal_candidates_add_a_size_step_beyond_each_end(joint):
    """One width step beyond each end in the sweep's spacing (x2: widths 8, 16, 32), P the real FNO's count; N one
    step beyond the grid; a new seed where all have run, the first where none has."""
    runs, jobs = joint
    design = resolve(OPTIMUM, runs, fit_curves(runs, n_boot=0), jobs).designs[0]
    small, large = (("model.width", 4), ("model.modes", 4)), (("model.width", 64), ("model.modes", 8))
    assert design.sizes[small] == pytest.approx(count_params(4, 4), rel=1e-3)
    assert design.sizes[large] == pytest.approx(count_params(64, 8), rel=1e-3)
    candidates = design.candidates()
    assert len(candidates) == 6 * 7 and {n for n, _, _ in candidates} == {2, 8, 32, 128, 512, 2048, 8192}
    assert (512, 3, (("model.width", 8), ("model.modes", 4))) in candidates and (512, 0, large) in candidates


def test_picks_for_the_compute_optimal_size_keep_the_budget_and_beat_random_ones(joint):
    """The issue's criterion on few draws (``python -m analysis.suggest_check --target popt...`` runs 200)."""
    runs, jobs = joint
    resolved = resolve(OPTIMUM, runs, fit_curves(runs, n_boot=0), jobs)
    picks = pick(resolved, lambda i, n, s, size: n * resolved.designs[0].sizes[size] / 1e9, 2.0, k=4)
    assert len(picks) == 4 and sum(p.n * resolved.designs[0].sizes[p.size] for p in picks) <= 2e9
    assert np.all(np.diff([p.width for p in picks]) < 0)
    result = check_optimum(draws=3, n_boot=50, k=12)
    assert result["picked"] < result["uniform"] and result["better"] >= 0.5
    assert result["uniform_cost"] <= result["picked_cost"] * (1 + 1e-9)
