"""Pretraining-set size as an axis, end to end: the smoke sweep sweeps/pretrain-size-smoke.yaml (shrunk) runs
on the inline backend, and its report draws error vs pretraining samples and fits the law err = a P^-b + c per
strategy with intervals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.helpers import cli, harness, write_sweep

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_pretrain_size_smoke_sweep_reports_error_vs_pretraining_samples_and_its_law(tmp_path):
    spec = yaml.safe_load((ROOT / "sweeps" / "pretrain-size-smoke.yaml").read_text())
    sweep = write_sweep(tmp_path, spec, model={"width": 4}, pretrain={
        "n_val": 6, "n_test": 6, "train": {"steps": 6, "lr": 3.0e-3, "batch_size": 8}},
        downstream={"n_train": 8, "n_val_min": 4, "n_test": 6}, train={"steps": 4, "lr": 1.0e-3, "batch_size": 8})
    root = tmp_path / "results"
    cli(root, "expand", str(sweep))
    out = harness(root, "submit", "--backend", "inline")
    assert "26 ok" in out.stdout, out.stdout  # 8 pretrainings (2 strategies x 4 sizes), 16 fine-tunings, 2 scratch
    cli(root, "report", "--n-boot", "50")
    report = root / "pretrain-size-smoke" / "report"
    assert (report / "pretrain_size.png").stat().st_size > 10_000 and (report / "pretrain_size.pdf").exists()
    laws = pd.read_csv(report / "pretraining_size.csv")
    assert sorted(laws["strategy"]) == ["derivative", "supervised"]  # one curve each: heat / id, N = 8
    assert (laws[["system", "shift", "n_train"]].drop_duplicates().values.tolist() == [["heat", "id", 8]])
    assert (laws["n_points"] == 8).all() and (laws["n_distinct"] == 4).all()  # 4 sizes x 2 seeds
    assert (laws["p_min"] == 12).all() and (laws["p_max"] == 96).all() and laws["offset"].all()
    for k in "abc":  # percentile intervals over the seeds' resamples (they need not hold the point estimate)
        assert np.isfinite(laws[[k, f"{k}_lo", f"{k}_hi"]].to_numpy()).all()
        assert (laws[f"{k}_lo"] <= laws[f"{k}_hi"]).all()
    text = (report / "report.md").read_text()
    assert "pretrain_size.png" in text and "Pretraining-set size: err = a P^-b + c" in text
    section = text.split("Pretraining-set size")[1]
    assert "supervised" in section and "derivative" in section
