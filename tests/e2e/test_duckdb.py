"""The DuckDB query of docs/results.md over a sweep's summary files gives what pandas reads from them (the stages' files
have different columns: a pretraining has no downstream ones, hence union_by_name)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from analysis.synthetic import synthetic_runs, write_synthetic_sweep

duckdb = pytest.importorskip("duckdb", reason="duckdb is a dev extra: pip install -e '.[dev]'")


def test_duckdb_reads_the_summary_parquet_files_of_a_sweep(tmp_path: Path) -> None:
    runs = synthetic_runs(n_trains=(8, 32, 128))
    sweep = write_synthetic_sweep(tmp_path / "results" / "syn", runs)
    got = duckdb.sql(f"""select stage, "downstream.n_train" as n, median(test_rel_l2) as err
                         from read_parquet('{sweep}/runs/*/summary.parquet', union_by_name = true)
                         where status = 'ok' and stage in ('finetune', 'scratch')
                         group by all order by stage, n""").df()
    # the pandas recipe of docs/results.md: every run's summary.parquet (a run folder also holds manifest.json)
    table = pd.concat([pd.read_parquet(p) for p in sorted(sweep.glob("runs/*/summary.parquet"))])
    downstream = table[(table["status"] == "ok") & table["stage"].isin(["finetune", "scratch"])]
    expected = (downstream.groupby(["stage", "downstream.n_train"])["test_rel_l2"].median()
                .reset_index().set_axis(["stage", "n", "err"], axis=1))
    assert len(got) == len(expected) > 3
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
