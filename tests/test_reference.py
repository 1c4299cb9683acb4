"""The committed reference study: re-running the report on its Parquet results reproduces its fits table."""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis.report import build_report

REFERENCE = Path(__file__).resolve().parent.parent / "results" / "reference"


@pytest.mark.parametrize("sweep", ["study", "strategies"])
def test_the_committed_fits_table_is_reproduced_exactly(sweep: str, tmp_path: Path) -> None:
    result = build_report(REFERENCE / sweep, tmp_path)
    assert result.counts["ok"] == result.counts["planned"] > 0
    committed = REFERENCE / sweep / "report" / "fits.csv"
    assert result.fits_csv.read_bytes() == committed.read_bytes()
