"""`harness report --metric`: a tiny real sweep records every test metric, and its report fits the one chosen;
an unknown metric is refused in one line before anything is written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from analysis.curves import ERR, fit_curves
from analysis.load import ReportError, load_runs
from analysis.report import build_report
from analysis.sections import metric_line
from analysis.synthetic import synthetic_runs, write_synthetic_sweep
from harness.cli import main
from harness.train import METRICS
from tests.helpers import TINY, cli, results, write_sweep

FIELD_METRICS = [f"test_{name}" for name in METRICS]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny sweep (16x16 Poisson), pretrained and scratch at N = 8, 16, run inline: its results root."""
    folder = tmp_path_factory.mktemp("metric")
    spec = {**TINY, "matrix": {"downstream.n_train": [8, 16], "init": ["pretrained", "scratch"]}}
    root = folder / "results"
    cli(root, "expand", str(write_sweep(folder, spec)))
    cli(root, "submit", "--backend", "inline")
    return root


def test_every_job_records_every_metric_of_its_predictions(tiny: Path) -> None:
    table = results(tiny)
    assert (table["status"] == "ok").all() and len(table) == 5
    assert np.isfinite(table[FIELD_METRICS].to_numpy(float)).all()
    # one solution channel: nRMSE is relative L2 (the job's in float32, the metric's in float64)
    np.testing.assert_allclose(table["test_nrmse"], table["test_rel_l2"], rtol=1e-5)
    assert (table["test_frmse_high"] == 0).all()  # a 16-point grid has no wavenumber of shell 12 or more
    rms = np.sqrt(table["test_frmse_low"] ** 2 + table["test_frmse_mid"] ** 2)  # at most the mean RMS error
    assert ((rms > 0) & (rms < table["test_max_err"])).all()


def test_report_fits_the_chosen_metric_and_says_which(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "max_err"
    text = cli(tiny, "report", "--metric", "max_err", "--n-boot", "20", "--out", str(out))
    assert f"{out / 'report.md'}" in text
    md = (out / "report.md").read_text()
    assert "Error metric: max abs error (not the default, relative L2), each run's test_max_err" in md
    fitted = pd.read_csv(out / "fits.csv")
    # the same fits as of the runs with their recorded max error in place of the relative L2
    runs = load_runs(tiny / "tiny").ok
    by_hand = runs.assign(**{ERR: runs["id"].map(results(tiny).set_index("id")["test_max_err"])})
    expected = fit_curves(by_hand, n_boot=20, seed=0).table
    assert len(fitted) == len(expected) == 2  # fine-tuned and scratch
    np.testing.assert_allclose(fitted["b"], expected["b"], rtol=1e-6)
    default = fit_curves(runs, n_boot=20, seed=0).table  # of the relative L2
    assert not np.allclose(default["a"], fitted["a"])
    assert metric_line("rel_l2").startswith("Error metric: relative L2, each run's test_rel_l2")


def test_an_unknown_metric_is_one_line_and_writes_nothing(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "never"
    result = CliRunner().invoke(main, ["report", "--metric", "l3", "--out", str(out), "--root", str(tiny)])
    assert result.exit_code == 2
    line = result.output.strip()
    assert "\n" not in line and "'--metric'" in line and "'l3'" in line
    assert all(f"'{name}'" in line for name in METRICS)
    assert not out.exists() and not (tiny / "tiny" / "report").exists()
    with pytest.raises(ReportError, match="--metric 'l3' is not a metric; known: rel_l2, nrmse"):
        build_report(tiny / "tiny", out, metric="l3")
    assert not out.exists()


def test_a_sweep_that_never_recorded_the_metric_is_refused_by_name(tmp_path: Path) -> None:
    runs = synthetic_runs(sizes=((16, 4),), n_trains=(8, 64), seeds=(0,))
    sweep = write_synthetic_sweep(tmp_path / "old", runs)
    for path in (sweep / "runs").glob("*/summary.parquet"):  # as a harness of before the metrics wrote them
        table = pq.read_table(path)
        pq.write_table(table.drop_columns([c for c in FIELD_METRICS if c != "test_rel_l2"]), path)
    with pytest.raises(ReportError, match=r"no run records test_nrmse .* report --metric rel_l2"):
        build_report(sweep, tmp_path / "out", metric="nrmse")
    assert not (tmp_path / "out").exists()
    assert len(load_runs(sweep).ok) == len(runs)  # the default metric reports as before


def test_the_chosen_metric_fills_the_error_column_and_a_downstream_run_without_it_is_skipped(tmp_path: Path) -> None:
    runs = synthetic_runs(sizes=((16, 4),), n_trains=(8, 64), seeds=(0,))
    runs["test_nrmse"] = runs["test_rel_l2"] * 1.5
    runs.loc[runs["stage"] == "pretrain", "test_nrmse"] = np.nan  # a pretext pretraining's: its target is no field
    lost = runs.index[runs["stage"] == "scratch"][0]
    runs.loc[lost, "test_nrmse"] = np.nan
    loaded = load_runs(write_synthetic_sweep(tmp_path / "syn", runs), "nrmse")
    assert loaded.metric == "nrmse" and loaded.ok.attrs["metric"] == "nrmse"
    assert loaded.problems == [(runs.at[lost, "id"], "ok but test_nrmse is nan: skipped")]
    assert len(loaded.ok) == len(runs) - 1 and (loaded.ok["stage"] == "pretrain").any()
    kept = runs.drop(index=lost).set_index("id")
    np.testing.assert_allclose(loaded.ok.set_index("id")[ERR], kept.loc[loaded.ok["id"], "test_nrmse"])
