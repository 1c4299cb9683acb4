"""build_report through real files: figures, HTML, Markdown, fits; bad runs reported; clear errors."""

import html
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from matplotlib.image import imread

from analysis.load import ReportError, load_runs
from analysis.pretrain_law import NO_AXIS as NO_PRETRAIN_SIZES
from analysis.report import build_report
from analysis.synthetic import synthetic_runs, tuned_runs, write_synthetic_sweep

NO_ALLOCATION = ("no joint law err = E + A P^-a + B N^-b could be fitted: the joint law needs >= 3 distinct model "
                 "sizes and N, but got 2 sizes and 4 N")
SMALL = {"sizes": ((16, 4), (32, 8)), "n_trains": (8, 64, 512, 4096), "seeds": (0, 1)}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory):
    runs = synthetic_runs(**SMALL, pretrain_systems=("same", "mixed"))
    runs.loc[5, ["status", "error", "test_rel_l2"]] = ["failed", "CUDA out of memory", np.nan]
    sweep = write_synthetic_sweep(tmp_path_factory.mktemp("res") / "syn", runs)
    corrupt = sweep / "runs" / str(runs["id"].iloc[7]) / "summary.parquet"
    corrupt.write_bytes(b"not parquet")
    missing = sweep / "runs" / str(runs["id"].iloc[9]) / "summary.parquet"
    missing.unlink()
    return sweep, runs, build_report(sweep, n_boot=100)


def test_every_applicable_figure_is_a_real_image(report) -> None:
    _, _, result = report
    assert set(result.figures) == {"error_vs_n", "gain_vs_size", "efficiency_vs_target", "gain_heatmap",
                                   "mixed_pretraining", "data_transferred", "error_vs_compute",
                                   "residuals"}  # fmt: skip
    for png in result.figures.values():
        image = imread(png)
        assert image.shape[0] > 300 and image.shape[1] > 300
        assert image[..., :3].std() > 0.05
        assert len(np.unique(image[..., :3].reshape(-1, 3), axis=0)) > 50
        assert png.with_suffix(".pdf").read_bytes().startswith(b"%PDF")


def test_html_embeds_each_figure_and_says_why_others_were_skipped(report) -> None:
    _, _, result = report
    text = result.html.read_text()
    assert len(re.findall("data:image/png;base64,", text)) == len(result.figures)
    assert result.skipped == {"strategies": "pretrain.strategy is not varied (supervised)",
                              "chosen_lr": "the sweep is not tuned (no tune.study column)",
                              "rollout": "no run was rolled out (task next_step records its rollout errors)",
                              "joint_law": "no joint law was fitted (the joint law needs >= 3 distinct model sizes "
                                           "and N, but got 2 sizes and 4 N)",
                              "pretrain_size": NO_PRETRAIN_SIZES, "compute_optimal": NO_ALLOCATION}  # fmt: skip
    assert "Skipped <b>strategies</b>: pretrain.strategy is not varied" in text
    assert set(result.tables) == {"multipliers", "data_transferred", "scaling_laws", "holdout", "claims", "compute",
                                  "residuals"}  # fmt: skip
    assert result.tables_skipped == {"strategies": result.skipped["strategies"], "pretraining_size": NO_PRETRAIN_SIZES,
                                     "compute_optimal": NO_ALLOCATION}  # fmt: skip
    assert f"No <b>compute-optimal allocation</b>: {html.escape(NO_ALLOCATION)}" in text  # beside its section
    assert "Skipped the <b>strategies</b> table: pretrain.strategy is not varied" in text
    assert not (result.out_dir / "strategies.csv").exists()
    assert "Sweep definition" in text and "matrix:" in text
    md = result.markdown.read_text()
    assert "(error_vs_n.png)" in md and "| b |" in md.replace("| b | a |", "| b |")


def test_failed_corrupt_and_missing_runs_are_reported_not_fatal(report) -> None:
    _, runs, result = report
    assert result.counts["failed"] == 1 and result.counts["unreadable"] == 1 and result.counts["missing"] == 1
    assert result.counts["planned"] == len(runs)
    reasons = dict(result.problems)
    assert reasons[runs["id"].iloc[5]] == "failed: CUDA out of memory"
    assert "unreadable summary.parquet" in reasons[runs["id"].iloc[7]]
    assert "CUDA out of memory" in result.html.read_text()


def test_fits_are_byte_identical_for_the_same_inputs_and_seed(report, tmp_path: Path) -> None:
    sweep, _, result = report
    again = build_report(sweep, tmp_path / "again", n_boot=100)
    assert again.fits_csv.read_bytes() == result.fits_csv.read_bytes()
    assert again.fits_parquet.read_bytes() == result.fits_parquet.read_bytes()
    laws = result.tables["scaling_laws"].with_suffix(".parquet")
    assert again.out_dir.joinpath(laws.name).read_bytes() == laws.read_bytes()
    for name, path in result.tables.items():
        assert again.tables[name].read_bytes() == path.read_bytes(), name


def test_load_types_and_statuses(report) -> None:
    sweep, runs, _ = report
    loaded = load_runs(sweep)
    assert len(loaded.all) == len(runs) - 2 and (loaded.ok["status"] == "ok").all()
    assert loaded.all["model.width"].dtype.kind == "i"
    assert loaded.all["downstream.n_train"].dtype.kind == "f"  # null for zero-shot rows
    assert loaded.all[loaded.all["stage"] == "zeroshot"]["downstream.n_train"].isna().all()


def test_missing_plan_or_runs_give_the_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match=re.escape(f"no results under {tmp_path} (no plan.json): run `harness")):
        build_report(tmp_path)
    (tmp_path / "plan.json").write_text('{"sweep": "x", "spec": {}, "jobs": []}')
    with pytest.raises(ReportError, match="no runs/\\*/summary.parquet"):
        build_report(tmp_path)


def test_collect_reuses_results_parquet_and_rereads_only_changed_files(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from harness.store.collect import collect_table

    runs = synthetic_runs(**SMALL)
    sweep = write_synthetic_sweep(tmp_path / "syn", runs)
    cold = collect_table(sweep)
    assert cold.reused == 0 and cold.files == len(runs) and (sweep / "results.parquet").exists()
    warm = collect_table(sweep)
    assert warm.reused == len(runs) and warm.table.equals(cold.table)
    changed = sweep / "runs" / str(runs["id"].iloc[3]) / "summary.parquet"
    row = pq.read_table(changed).to_pandas().assign(test_rel_l2=0.123)
    row.to_parquet(changed, index=False)
    (sweep / "runs" / str(runs["id"].iloc[4]) / "summary.parquet").write_bytes(b"not parquet")
    again = collect_table(sweep)
    assert again.reused == len(runs) - 2
    assert [job for job, _ in again.unreadable] == [runs["id"].iloc[4]]
    assert again.table.num_rows == len(runs) - 1
    frame = again.table.to_pandas().set_index("id")
    assert frame.loc[runs["id"].iloc[3], "test_rel_l2"] == 0.123
    assert collect_table(sweep).reused == len(runs)  # the corrupt file's reason is cached too
    assert [job for job, _ in collect_table(sweep).unreadable] == [runs["id"].iloc[4]]


def test_cold_and_warm_reports_give_byte_identical_fits(report, tmp_path: Path) -> None:
    sweep, _, _ = report
    warm = build_report(sweep, tmp_path / "warm", n_boot=50)
    (sweep / "results.parquet").unlink()
    cold = build_report(sweep, tmp_path / "cold", n_boot=50)
    assert (sweep / "results.parquet").exists()
    assert cold.fits_csv.read_bytes() == warm.fits_csv.read_bytes()
    assert cold.counts == warm.counts and sorted(cold.problems) == sorted(warm.problems)


def test_tuned_sweeps_report_only_each_studys_best_trial(tmp_path: Path) -> None:
    runs = synthetic_runs(**SMALL)
    down = runs["stage"].isin(["finetune", "scratch"])
    trials = runs[down].assign(**{"train.lr": 1e-2, "test_rel_l2": runs.loc[down, "test_rel_l2"] * 3})
    trials["id"] = trials["id"] + "-t1"
    tuned = runs.copy()
    tuned.loc[down, "tune.study"] = tuned.loc[down, "id"]
    trials["tune.study"] = tuned.loc[down, "id"].to_numpy()
    trials["best_val_rel_l2"] = trials["test_rel_l2"] * 1.02
    sweep = write_synthetic_sweep(tmp_path / "tuned", pd.concat([tuned, trials], ignore_index=True))
    loaded = load_runs(sweep)
    assert len(loaded.all) == len(runs) + down.sum()
    assert len(loaded.ok) == len(runs) and loaded.ok["tune.best"].all()
    assert not loaded.ok["id"].str.endswith("-t1").any()  # the worse trials are not the sweep point's result


def test_pruned_trials_are_counted_as_pruned_not_as_problems(tmp_path: Path) -> None:
    runs = tuned_runs(synthetic_runs(sizes=((8, 4),), n_trains=(16, 64), seeds=(0,), zeroshot=False), lrs=(1e-3, 1e-2))
    losers = runs.index[(runs["tune.trial"] == 1) & ~runs["tune.best"].astype(bool)]
    runs.loc[losers, ["status", "error", "test_rel_l2"]] = ["pruned", "pruned at epoch 2 (val 0.9)", np.nan]
    runs.loc[runs.index[0], ["status", "error"]] = ["failed", "CUDA out of memory"]
    loaded = load_runs(write_synthetic_sweep(tmp_path / "pruned", runs))
    assert loaded.counts()["pruned"] == len(losers) > 0 and loaded.counts()["failed"] == 1
    assert [job for job, _ in loaded.problems] == [runs["id"].iloc[0]]


def _assert_real_image(png: Path) -> None:
    image = imread(png)
    assert image.shape[0] > 300 and image.shape[1] > 300
    assert image[..., :3].std() > 0.05
    assert len(np.unique(image[..., :3].reshape(-1, 3), axis=0)) > 50


def test_tuned_strategy_sweep_reports_chosen_lr_and_the_strategy_table(tmp_path: Path) -> None:
    # as sweeps/strategies-smoke.yaml, tuned: scratch rows (strategy none) have no pretraining keys
    runs = synthetic_runs(sizes=((8, 4),), n_trains=(16, 64), seeds=(0,), zeroshot=False,
                          strategies=("supervised", "masked"), augments=("none", "scale"))  # fmt: skip
    runs = tuned_runs(runs, lrs=(3e-4, 3e-3))
    result = build_report(write_synthetic_sweep(tmp_path / "strat", runs), n_boot=20)
    assert {"chosen_lr", "strategies", "error_vs_n"} <= set(result.figures)
    for name in ("chosen_lr", "strategies"):
        _assert_real_image(result.figures[name])
    fits = pd.read_csv(result.fits_csv)  # tuning columns and the chosen lr are not curve axes: one curve per
    assert len(fits) == 2 * (2 + 1) * 2 and not fits.columns.str.startswith("tune.").any()  # shift, strategy, aug
    assert "train.lr" not in fits.columns and (fits["n_points"] == 2).all()
    table = pd.read_csv(result.tables["strategies"])
    assert list(table.columns) == ["shift", "strategy", "augmentation", "N=16", "N=64"] and len(table) == 12
    assert set(table["strategy"]) == {"masked", "supervised", "none (scratch)"}
    md, text = result.markdown.read_text(), result.html.read_text()
    assert "| shift | strategy | augmentation | N=16 | N=64 |" in md
    assert "| id | none (scratch) | -/scale |" in md and "| moderate | masked | scale/scale |" in md
    assert "<td>none (scratch)</td>" in text and "Mean test relative L2 per pretraining strategy" in text


def test_report_states_the_protocol_lists_budget_limited_runs_and_fits_the_transfer_laws(tmp_path: Path) -> None:
    runs = synthetic_runs(**SMALL)
    down = runs["stage"].isin(["finetune", "scratch"])
    n_val = np.maximum(16, np.ceil(0.25 * runs["downstream.n_train"]))
    runs = runs.assign(**{"downstream.n_val_fraction": np.where(down, 0.25, np.nan),
                          "downstream.n_val_min": np.where(down, 16, np.nan),
                          "downstream.n_val": n_val.where(down, runs["downstream.n_val"])})  # fmt: skip
    result = build_report(write_synthetic_sweep(tmp_path / "protocol", runs), n_boot=20)
    md, text = result.markdown.read_text(), result.html.read_text()
    rule = "n_val = max(n_val_min, ceil(f n_train)) with f = 0.25 and n_val_min = 16"
    budget = "Training length (fine-tuning and scratch): a budget of 2000 optimiser steps (train.steps"
    assert md.index("## Protocol") < md.index("## Figures") and rule in md and budget in md
    assert "'>Protocol</h2>" in text and "href='#s1'>Protocol</a>" in text and rule in text
    assert "| N | runs | n_val | steps run | epochs run | budget-limited |" in md
    assert "| 8 | 16 | 16 | 2000 | 2000 | 8 of 16 |" in md and "| 4096 | 16 | 1024 | 2000 | 7.8125 | 0 of 16 |" in md
    improving = runs[runs["budget_limited"] & (runs["status"] == "ok")]
    assert len(improving) == 8 and (improving["stage"] == "scratch").all()
    assert "## Budget-limited runs: 8" in md
    assert all(f"| {job} | scratch |" in md for job in improving["id"])
    assert "hollow markers: at least one run at that N was budget-limited" in md
    laws = pd.read_csv(result.tables["scaling_laws"])
    assert set(laws["law"]) == {"data_transferred"} and set(laws["param"]) == {"k", "alpha", "beta"}
    assert "D_T = k D_F^alpha P^beta:" in md and "No **joint** law for system poisson" in md
    multipliers = pd.read_csv(result.tables["multipliers"])
    assert {"multiplier_interp", "interp_lo", "interp_hi", "multiplier_fit", "fit_lo", "fit_hi",
            "fit_extrapolated"} <= set(multipliers.columns)  # fmt: skip
    assert md.index("measured (interpolated)") < md.index("from the fits")
    # which variance the intervals include (synthetic seeds draw their own data), the held-out fits, the claims
    assert "Variance over seeds: of 32 curve points with several seeds, 32 vary the data draw" in md
    holdout = pd.read_csv(result.tables["holdout"])
    assert {"power law", "data_transferred"} <= set(holdout["fit"]) and holdout["covered"].notna().any()
    assert (holdout.loc[holdout["fit"] == "power law", "N"] == 4096).all()
    assert "## Held-out extrapolation" in md and "## Claims: " in md
    claims = pd.read_csv(result.tables["claims"])
    assert "budget.scratch.n8" in set(claims["id"]) and claims["id"].is_unique


def test_sweeps_written_before_the_new_columns_still_report(tmp_path: Path) -> None:
    runs = synthetic_runs(**SMALL).drop(columns=["best_step", "steps_run", "budget_limited", "train.steps"])
    runs["train.epochs"] = runs["train.lr"].where(runs["train.lr"].isna(), 40)
    sweep = write_synthetic_sweep(tmp_path / "old", runs)
    for path in (sweep / "runs").glob("*/summary.parquet"):  # as a harness of before these columns wrote them
        table = pq.read_table(path)
        pq.write_table(table.drop_columns(["best_step", "steps_run", "budget_limited"]), path)
    result = build_report(sweep, n_boot=20)
    md = result.markdown.read_text()
    assert "fixed n_val = 128 samples (downstream.n_val)" in md and "40 epochs (train.epochs)" in md
    assert "## Budget-limited runs: unknown" in md and "budget limited them is unknown" in md
    assert "hollow markers" not in md  # nothing is drawn hollow, so no caption explains it
    assert "| 8 | 16 | 128 | - | 2000 | unknown | - |" in md  # nor which fine-tunings were best at step 0
    assert "error_vs_n" in result.figures
