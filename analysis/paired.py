"""Claims that pair two sweeps by seed: the same curves, N and seeds run again under another protocol (twice the
step budget, a learning rate beyond the edge of the tuned grid), so that a reading can say what the protocol choice
changed, with an interval from the seed-paired ratios (``intervals.paired_ratio_interval``).

For every (stage, curve, N) both sweeps ran, ``pair.<name>.ratio.<stage>.<curve>.n<N>`` is the other sweep's test
error over the base's (each sweep's chosen run, as the report uses it). When the other sweep tuned the same
parameters at values outside the base's search space (``outside_the_grid``), the search widened by those values is
replayed on the validation errors both sweeps recorded: ``pair.<name>.chosen.<stage>.<curve>`` counts the (N, seed)
points where the new value would have been chosen, and ``pair.<name>.widened.<stage>.<curve>.n<N>`` is the test
error of the widened choice over the original one's.

``python -m analysis.paired BASE OTHER [OTHER ...]`` writes the table (``claims.COLUMNS``) to BASE/report/paired.csv.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.claims import COLUMNS, COUNT, claim, curve_id, key_values, ref_text
from analysis.curves import BASE_KEY, ERR, N, curves, downstream_points, tuned_params
from analysis.intervals import paired_ratio_interval
from analysis.load import load_runs

PAIR = [*BASE_KEY, N, "seed"]
VAL = "best_val_rel_l2"


def paired_claims(base_dir: Path, other_dirs: list[Path]) -> pd.DataFrame:
    """The paired claims (COLUMNS) of the sweep in ``base_dir`` against each sweep in ``other_dirs``, sorted by id;
    each other sweep is named by its folder."""
    base = load_runs(Path(base_dir))
    rows: list[dict] = []
    for other_dir in other_dirs:
        other, name = load_runs(Path(other_dir)), Path(other_dir).name
        rows += ratio_claims(base.ok, other.ok, name)
        if outside_the_grid(base.ok, other.ok):
            rows += widened_claims(base.all[base.all["status"] == "ok"], other.ok, name)
    return pd.DataFrame(rows, columns=COLUMNS).sort_values("id", kind="stable").reset_index(drop=True)


def ratio_claims(base: pd.DataFrame, other: pd.DataFrame, name: str) -> list[dict]:
    """Other / base test error of the chosen runs, paired by seed, per (stage, curve, N)."""
    joined = _trained(base).merge(_trained(other)[[*PAIR, ERR]], on=PAIR, suffixes=("", "_other"))
    return [_ratio(f"pair.{name}.ratio", f"test error in {name} / in the base sweep (paired by seed)", key, g,
                   g[f"{ERR}_other"], g[ERR]) for key, g in curves(joined, [*BASE_KEY, N])]  # fmt: skip


def outside_the_grid(base: pd.DataFrame, other: pd.DataFrame) -> bool:
    """Whether ``other`` tuned the parameters ``base`` tuned, at values none of base's trials of the same stage
    tried (a grid may be per stage: fine-tuning's top rate can be the bottom of scratch's)."""
    params = _tuned(base)
    if not params or params != _tuned(other):
        return False
    stages = set(other["stage"]) & set(base["stage"])
    return bool(stages) and all(not set(other.loc[other["stage"] == s, p].dropna())
                                & set(base.loc[base["stage"] == s, p].dropna()) for p in params for s in stages)


def widened_claims(trials: pd.DataFrame, other: pd.DataFrame, name: str) -> list[dict]:
    """The base's search widened by the other sweep's values, replayed on recorded validation errors: how often the
    new value wins, and the test error of the widened choice over the original choice, per (stage, curve, N).
    ``trials``: every ok trial of the base (chosen or not); ``other``: the other sweep's chosen runs."""
    trials, other = _trained(trials), _trained(other)
    chosen = trials.loc[trials.groupby(PAIR, dropna=False)[VAL].idxmin()]
    joined = chosen.merge(other[[*PAIR, VAL, ERR]], on=PAIR, suffixes=("", "_other"))
    joined["wins"] = joined[f"{VAL}_other"] < joined[VAL]
    joined["widened"] = np.where(joined["wins"], joined[f"{ERR}_other"], joined[ERR])
    rows = []
    for key, g in curves(joined, BASE_KEY):
        values = key_values(BASE_KEY, key)
        cid = f"pair.{name}.chosen.{values['stage']}.{curve_id(values)}"
        rows.append(claim(cid, f"(N, seed) points where {name}'s value would be chosen", g["wins"].sum(), np.nan,
                          np.nan, COUNT, len(g), ref_text(values)))  # fmt: skip
    rows += [_ratio(f"pair.{name}.widened", f"test error with {name}'s values added to the search / without", key, g,
                    g["widened"], g[ERR]) for key, g in curves(joined, [*BASE_KEY, N])]  # fmt: skip
    return rows


def _ratio(prefix: str, quantity: str, key: tuple, rows: pd.DataFrame, top: pd.Series, bottom: pd.Series) -> dict:
    values = key_values([*BASE_KEY, N], key)
    n = values.pop(N)
    ratio, lo, hi, basis = paired_ratio_interval(top.to_numpy(float), bottom.to_numpy(float))
    return claim(f"{prefix}.{values['stage']}.{curve_id(values)}.n{int(n)}", quantity, ratio, lo, hi, basis.label,
                 len(rows), ref_text(values, n), "x")  # fmt: skip


def _trained(runs: pd.DataFrame) -> pd.DataFrame:
    pts = downstream_points(runs).merge(runs[["id", VAL]], on="id", how="left")
    return pts[pts["stage"].isin(["finetune", "scratch"])].reset_index(drop=True)


def _tuned(runs: pd.DataFrame) -> set[str]:
    """The parameters a sweep's tuning studies searched (keys of ``tune.params``)."""
    return {p for p in tuned_params(runs) if not p.startswith("tune.")}


def main(argv: list[str] | None = None) -> None:
    """Write BASE/report/paired.csv."""
    parser = argparse.ArgumentParser(prog="python -m analysis.paired", description=__doc__.split("\n\n")[0])
    parser.add_argument("base", type=Path)
    parser.add_argument("others", type=Path, nargs="+")
    args = parser.parse_args(argv)
    out = args.base / "report" / "paired.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    paired_claims(args.base, args.others).to_csv(out, index=False)
    print(f"paired claims: {out}")


if __name__ == "__main__":
    main()
