"""The committed reference study: fitting its Parquet results again reproduces its fits table."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.curves import fit_curves
from analysis.load import load_runs

REFERENCE = Path(__file__).resolve().parents[2] / "results" / "reference"


@pytest.mark.parametrize("sweep", ["study", "budget", "lr-edge", "architectures-ref", "compute-ref", "strategies",
                                   "strategies-time", "strategies-time-all"])
def test_the_committed_fits_table_is_reproduced(sweep: str) -> None:
    loaded = load_runs(REFERENCE / sweep)
    counts = loaded.counts()
    assert counts["ok"] == counts["planned"] > 0
    # what `harness report` writes to fits.csv, without drawing the figures this test does not look at
    fits = fit_curves(loaded.ok, n_boot=1000, seed=0).table
    again = pd.read_csv(io.StringIO(fits.to_csv(index=False)))
    committed = pd.read_csv(REFERENCE / sweep / "report" / "fits.csv")
    assert list(again.columns) == list(committed.columns) and len(again) == len(committed) > 0
    numbers = [c for c in committed.columns if committed[c].dtype.kind == "f"]
    others = [c for c in committed.columns if c not in numbers and c != "message"]  # message: the solver's prose
    pd.testing.assert_frame_equal(again[others], committed[others])
    # the same data and seed give the same fits up to the fits' own convergence tolerance: analysis.robust.lm stops
    # within about 1e-4 of a standard error of the optimum, and another numpy / scipy / BLAS moves the stopping point
    # by about 1e-5 relative (numpy 2.4.6 and scipy 1.17.1 against the versions the files were fitted with); a fitted
    # floor at its bound of 0 lands anywhere below 1e-9
    np.testing.assert_allclose(again[numbers].to_numpy(), committed[numbers].to_numpy(), rtol=1e-4, atol=1e-8)
