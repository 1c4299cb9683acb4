"""The compute part of a report: every run's FLOPs (compute.csv), the compute-optimal allocation of each joint law
(compute_optimal.csv; its exponents and the break-even compute of pretraining go to scaling_laws.csv), the fit
diagnostics (residuals.csv, the warnings beside the fit tables) and the report's section on them."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from analysis.compute import run_compute
from analysis.curves import CurveFits, downstream_points
from analysis.diagnostics import DECADE, Diagnostics, diagnose
from analysis.document import Block
from analysis.laws import Laws
from analysis.load import LoadedRuns
from analysis.optimal import compute_optimal, decade_optima
from analysis.sections import value_ci

NO_COMPUTE = "no run's FLOPs could be counted (the plan lists no job of these runs)"
COMPUTE_TEXT = (
    "Training compute (compute.csv): a run's FLOPs are TRAIN_PASSES (3: forward and backward) x the forward FLOPs of "
    "one sample of its model (the model family's own FLOP function, as `harness expand --estimate` counts them) x "
    "the samples its recorded steps saw; validation and test passes are not counted. A fine-tuned run also carries its "
    "pretraining's FLOPs, counted in full and amortised over the fine-tunings of the plan that start from it. "
    "Per joint law, the compute model C = kappa P^gamma N^sigma is fitted (least squares in log space) to the group's "
    "runs and stated with its largest error; minimising err = E + A P^-a + B N^-b at fixed C gives "
    "P* ~ C^(b/D) and N* ~ C^(a/D), D = a sigma + gamma b (Besiroglu et al. 2024's full-law approach). With "
    "pretraining counted, C = kappa P^gamma N^sigma + kappa' P^gamma' is minimised numerically over P. Intervals: "
    "those of the joint law's bootstrap fits, each giving its own allocation (compute_optimal.csv lists P*, N* and "
    "err* on a grid of C, flagged extrapolated beyond the sampled P or N). Break-even: the smallest total compute of "
    "the range from which the compute-optimal fine-tuned error is at most scratch's (inf: not within the range), "
    "intervals from paired bootstrap fits."
)
DIAGNOSTICS_TEXT = (
    "Every fitted point's log residual is in residuals.csv (figure: residuals). A fit is flagged beside its table "
    f"row when an exponent sits on its bound or its data span less than a decade ({DECADE:g}x) on an axis the law "
    "has an exponent for; the flags:"
)


@dataclass(frozen=True)
class ComputeAnalysis:
    """``compute``: ``run_compute`` of the ok runs; ``optimal``: ``compute_optimal``'s allocation table;
    ``law_rows``: its rows for scaling_laws.csv; ``skipped``: (group, why) for joint laws without an allocation;
    ``diagnostics``: residuals and warnings of every fit; ``decades``: the allocation at each group's powers of ten of
    compute (``decade_optima``: the P* claims)."""

    compute: pd.DataFrame
    optimal: pd.DataFrame
    law_rows: pd.DataFrame
    skipped: list[tuple[str, str]]
    diagnostics: Diagnostics
    decades: pd.DataFrame


def analyse_compute(loaded: LoadedRuns, fits: CurveFits, laws: Laws) -> ComputeAnalysis:
    """FLOPs of every ok run (from the plan's jobs), the allocations of the joint laws and the fit diagnostics."""
    compute = run_compute(loaded.ok, loaded.plan.jobs if loaded.plan else [])
    pts = downstream_points(loaded.ok).merge(compute, on="id")
    optimal, law_rows, skipped = compute_optimal(pts, laws.fits, laws.group_columns)
    return ComputeAnalysis(compute, optimal, law_rows, skipped, diagnose(loaded.ok, fits, laws),
                           decade_optima(pts, laws.fits, laws.group_columns))


def compute_tables(analysis: ComputeAnalysis, laws: Laws) -> dict[str, tuple[pd.DataFrame | None, str]]:
    """The report's compute, compute_optimal and residuals tables: name -> (table, "") or (None, why absent)."""
    return {
        "compute": (analysis.compute, "") if analysis.compute["compute"].notna().any() else (None, NO_COMPUTE),
        "compute_optimal": (analysis.optimal, "") if not analysis.optimal.empty else (None, no_allocation(analysis,
                                                                                                          laws)),
        "residuals": (analysis.diagnostics.residuals, "") if not analysis.diagnostics.residuals.empty else
        (None, "no fit"),
    }  # fmt: skip


def no_allocation(analysis: ComputeAnalysis, laws: Laws) -> str:
    """Why no group has a compute-optimal allocation: no joint law (and why), or no compute model (and why)."""
    if not any(law == "joint" for law, _ in laws.fits):
        why = sorted({why for law, _, why in laws.skipped if law == "joint"})
        return "no joint law err = E + A P^-a + B N^-b could be fitted" + (f": {'; '.join(why)}" if why else "")
    return "; ".join(sorted({why for _, why in analysis.skipped})) or NO_COMPUTE


def compute_blocks(analysis: ComputeAnalysis, laws: Laws) -> list[Block]:
    """The report's sections on compute-optimal allocation and fit diagnostics."""
    blocks = [Block("heading", "Compute-optimal allocation"), Block("text", COMPUTE_TEXT)]
    if analysis.optimal.empty:
        blocks.append(Block("skip", ("No ", "compute-optimal allocation", "", no_allocation(analysis, laws))))
    else:
        blocks.append(Block("table", allocation_summary(analysis)))
        blocks += [Block("skip", ("No ", "allocation", f" for {group}", why)) for group, why in analysis.skipped]
    warnings = [(fit, "/".join(v for v in label if v), text) for (fit, label), text in
                analysis.diagnostics.warnings.items() if text]  # fmt: skip
    blocks += [Block("heading", "Fit diagnostics"), Block("text", DIAGNOSTICS_TEXT)]
    blocks.append(Block("table", pd.DataFrame(warnings, columns=["fit", "group", "warning"])) if warnings else
                  Block("text", "none: no exponent on its bound, every fit's data span a decade or more."))
    return blocks


def allocation_summary(analysis: ComputeAnalysis) -> pd.DataFrame:
    """One row per law row of the allocation (exponents of P* and N*, break-even computes): group, what, value
    [interval], what the interval is, and the compute model."""
    t = analysis.law_rows
    group = [c for c in t.columns if c not in ("law", "param", "value", "lo", "hi", "ci", "message")]
    shown = [value_ci(v, lo, hi) for v, lo, hi in zip(t["value"], t["lo"], t["hi"], strict=True)]
    return t[group].assign(quantity=t["param"], value=shown, interval=t["ci"], notes=t["message"])
