"""The readings of the committed reference runs quote numbers the analysis computes: every marked number in the
README and results/reference/README.md is recomputed from the committed runs (claims of each sweep, and the claims
pairing the study with its budget and learning-rate checks) and must match at the precision it is written with;
every number inside a readings block must be marked."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from analysis.claims import check_readings, claims_for
from analysis.paired import paired_claims

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "results" / "reference"
READINGS = [ROOT / "README.md", REFERENCE / "README.md"]


@pytest.fixture(scope="module")
def claims() -> pd.DataFrame:
    """Every claim a reading may quote, its id prefixed by the sweep it comes from (``study.gain....``)."""
    tables = {
        "study": pd.concat([claims_for(REFERENCE / "study"),
                            paired_claims(REFERENCE / "study", [REFERENCE / "budget", REFERENCE / "lr-edge"])]),
        "strategies-time": claims_for(REFERENCE / "strategies-time"),
        "strategies-time-all": claims_for(REFERENCE / "strategies-time-all"),
        "architectures-ref": claims_for(REFERENCE / "architectures-ref"),
        "compute-ref": claims_for(REFERENCE / "compute-ref"),
    }  # fmt: skip
    return pd.concat([t.assign(id=f"{name}." + t["id"]) for name, t in tables.items()], ignore_index=True)


@pytest.mark.parametrize("page", READINGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_quoted_number_is_the_one_the_committed_runs_give(page: Path, claims: pd.DataFrame) -> None:
    text = page.read_text()
    assert "<!-- readings -->" in text and "<!--claim:" in text
    assert check_readings(text, claims) == []


def test_the_committed_claim_tables_are_what_the_runs_give(claims: pd.DataFrame) -> None:
    committed = [("study", "claims.csv"), ("study", "paired.csv"), ("strategies-time", "claims.csv"),
                 ("strategies-time-all", "claims.csv"), ("architectures-ref", "claims.csv"),
                 ("compute-ref", "claims.csv")]
    for sweep, name in committed:
        committed = pd.read_csv(REFERENCE / sweep / "report" / name).set_index("id")
        mine = claims[claims["id"].str.startswith(f"{sweep}.")]
        computed = mine.assign(id=mine["id"].str[len(sweep) + 1 :]).set_index("id").loc[committed.index]
        assert (computed["display"] == committed["display"]).all(), sweep


def test_a_number_changed_by_hand_fails_the_check(claims: pd.DataFrame) -> None:
    text = (REFERENCE / "README.md").read_text()
    quoted = "0.0072 (0.0063-0.0081)<!--claim:study.err.scratch.poisson.id.w16m8.n2048-->"
    assert quoted in text
    displayed = check_readings(text.replace(quoted, quoted.replace("0.0072 (", "0.0082 (")), claims)
    line = text[: text.index(quoted)].count("\n") + 1
    assert displayed == [f'line {line}: study.err.scratch.poisson.id.w16m8.n2048 is quoted as "0.0082 (0.0063-0.0081)",'
                         ' the runs give "0.0072 (0.0063-0.0081)"']
    for wrong in ("0.0082", "0.00724"):  # another value; more digits than the interval supports
        problems = check_readings(text.replace(quoted, quoted.replace("0.0072 (0.0063-0.0081)", wrong)), claims)
        assert len(problems) == 1 and "err.scratch.poisson.id.w16m8.n2048" in problems[0], wrong
    assert check_readings(text.replace(quoted, quoted.replace("0.0072 (0.0063-0.0081)", "0.007")), claims) == []
    unmarked = re.sub(r"<!--claim:study\.step0\.n8-->", "", text)
    assert any("34 in a reading quotes no claim" in p for p in check_readings(unmarked, claims))
