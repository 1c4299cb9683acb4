"""The jobs scored on other sources (`harness eval`, a sweep's `eval:`; ``harness.sweep.evals``): their rows, a table
and a figure of test error vs N per evaluation source.

Each run folder's ``eval.parquet`` holds one row per (source, resolution) the job was scored on; the rows are
joined to the ok runs (stage, N, model size). The figure: one panel per downstream system and shift of the
trained jobs, x the downstream N, y the mean test error over seeds at the largest model, one colour per evaluation
source and grid (the jobs' own test split first, as "own test"), solid fine-tuned, dashed scratch; zero-shot jobs
(no N) are in the table only. The error is the report's metric (``--metric``) throughout: the eval rows' as the
runs' (``analysis.load.use_metric``), evaluations.csv's column ``test_<metric>`` and the figure's axis.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis.curves import DOWNSTREAM, ERR, PANEL, N, metric_label, ordered_panels
from analysis.figures.style import STAGE_LABELS, FigureResult, panel_grid, paper_style, ramp
from analysis.load import use_metric
from harness.store.folders import EVAL_ROWS
from harness.train import DEFAULT_METRIC

OWN = "own test"
NO_EVALS = "no job was scored on another source (`harness eval`, or a sweep's `eval:`)"
STYLES = {"finetune": "-", "scratch": "--"}


def eval_rows(sweep_dir: Path, runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The eval rows of the ok downstream ``runs``: (those that scored, those whose scoring failed, with their
    ``error``; ``harness.job.evaluate.score_each``), each with its stage, system, shift, N and parameter count,
    ``where``: the source and its grid (``helmholtz:moderate @ 32``), and its error (``ERR``) that of the runs'
    metric."""
    frames = [pd.read_parquet(path) for path in sorted(Path(sweep_dir).glob(f"runs/*/{EVAL_ROWS}"))]
    if not frames or runs.empty:
        return pd.DataFrame(), pd.DataFrame()
    rows = use_metric(pd.concat(frames, ignore_index=True), runs.attrs.get("metric", DEFAULT_METRIC))
    keep = ["id", "stage", *PANEL, N, "n_params"]
    rows = rows.merge(runs[[c for c in keep if c in runs]], on="id", how="inner")
    rows = rows[rows["stage"].isin(DOWNSTREAM)]
    rows = rows.assign(where=rows["source"] + " @ " + rows["resolution"].astype(str))
    error = rows["error"].fillna("") if "error" in rows else pd.Series("", index=rows.index)  # none in older rows
    return rows[error == ""].reset_index(drop=True), rows[error != ""].reset_index(drop=True)


def failure_line(failed: pd.DataFrame) -> str:
    """One line saying how many scorings ``failed`` (``eval_rows``' second frame) holds and why; "" for none."""
    if failed.empty:
        return ""
    why = failed.groupby(["where", "error"], sort=True).size()
    reasons = "; ".join(f"{where}: {error} ({n} run{'s' * (n > 1)})" for (where, error), n in why.items())
    return f"{len(failed)} scoring(s) on other sources failed and are left out of the table and figure: {reasons}"


def eval_table(rows: pd.DataFrame) -> tuple[pd.DataFrame | None, str]:
    """Mean test error per trained system and shift, stage, evaluation source and grid, and N (over seeds), in a
    column named after the rows' metric (``test_<metric>``)."""
    if rows.empty:
        return None, NO_EVALS
    keys = [*PANEL, "stage", "source", "resolution", "trained_resolution", N]
    table = rows.groupby(keys, dropna=False, sort=True)[ERR].agg(["mean", "count"]).reset_index()
    error = f"test_{rows.attrs.get('metric', DEFAULT_METRIC)}"
    return table.rename(columns={"mean": error, "count": "runs", PANEL[0]: "system", PANEL[1]: "shift"}), ""


@paper_style
def eval_figure(runs: pd.DataFrame, fits: object = None, *, rows: pd.DataFrame) -> FigureResult:
    """Test error vs N per evaluation source (module docstring)."""
    rows = rows[rows[N].notna()] if not rows.empty else rows
    if rows.empty:
        return FigureResult(None, NO_EVALS)
    own = runs[runs["stage"].isin(STYLES) & runs["id"].isin(rows["id"])].assign(where=OWN)
    both = pd.concat([own, rows[rows["stage"].isin(STYLES)]], ignore_index=True)
    names = [OWN, *sorted(set(both["where"]) - {OWN})]
    colors = dict(zip(names, ramp("colorblind", len(names)), strict=True))
    panels = ordered_panels(both)
    titles = [f"trained on {system}, shift {shift}" for system, shift in panels]
    fig, axes = panel_grid(titles, "test error vs N on other sources and grids (largest model, mean over seeds)")
    for ax, (system, shift) in zip(axes, panels, strict=True):
        sub = both[(both[PANEL[0]] == system) & (both[PANEL[1]] == shift)]
        sub = sub[sub["n_params"] == sub["n_params"].max()]
        for (where, stage), line in sub.groupby(["where", "stage"], sort=False):
            mean = line.groupby(N)[ERR].mean()
            ax.plot(mean.index, mean.values, STYLES[stage], marker="o", color=colors[where],
                    label=f"{where}, {STAGE_LABELS[stage]}")
        ax.set(xlabel="N (downstream training samples)", ylabel=f"test {metric_label(runs)}")
        ax.legend(fontsize="x-small", loc="center left", bbox_to_anchor=(1.02, 0.5))
    return FigureResult(fig)
