"""The model-families smoke sweep (sweeps/architectures-smoke.yaml) end to end: expand with its estimate per family,
every job of four families run by `harness submit --backend inline`, and `harness report` comparing the families."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from harness.models import ARCHS
from tests.helpers import cli, harness, results

pytestmark = pytest.mark.slow
SWEEP = Path(__file__).resolve().parents[2] / "sweeps" / "architectures-smoke.yaml"


def test_the_families_smoke_sweep_runs_and_reports_per_family(tmp_path: Path) -> None:
    sweep = shutil.copy(SWEEP, tmp_path / SWEEP.name)
    root = tmp_path / "results"
    out = cli(root, "expand", str(sweep), "--estimate")
    assert "44 jobs" in out and all(f"\n{arch} " in out for arch in ARCHS)  # a cost row per family
    harness(root, "submit", "architectures-smoke", "--backend", "inline")
    runs = results(root, "architectures-smoke")
    assert len(runs) == 44 and set(runs["status"]) == {"ok"}
    assert set(runs["model.arch"].fillna("fno")) == set(ARCHS)  # FNO configs leave model.arch out
    for arch, rows in runs.groupby(runs["model.arch"].fillna("fno")):  # every stage of a family: one model
        assert rows["n_params"].nunique() == 1 and 1000 < rows["n_params"].iloc[0] < 5000, arch
    harness(root, "report", "architectures-smoke", "--n-boot", "50")
    report = root / "architectures-smoke" / "report"
    table = pd.read_csv(report / "architectures.csv")
    assert sorted(table["arch"]) == sorted(ARCHS) and (table[["n_min", "n_max"]].to_numpy() == [8, 32]).all()
    assert (table["gain_n_min"] > 0).all() and table["gain_n_min_lo"].notna().all()  # two seeds: their range
    assert {f"gallery_poisson_id_{arch}.png" for arch in ARCHS} <= {p.name for p in report.iterdir()}
    assert "Model families compared" in (report / "report.md").read_text()
