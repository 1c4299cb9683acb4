"""What the report says, in order: jobs, protocol, budget-limited runs, figures, power-law fits, data-efficiency
multipliers, transfer laws, the strategy table, the pretraining-size laws, problems and the sweep definition (as
``analysis.document`` blocks, written out as HTML and Markdown by ``analysis.report``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import yaml

from analysis.curves import FIT_COLUMNS, CurveFits
from analysis.document import Block
from analysis.laws import LAWS, MAX_EXTRAPOLATION, Laws
from analysis.load import LoadedRuns
from analysis.multipliers import SMALL_N, multiplier_display
from analysis.pretrain_law import LAW as PRETRAIN_LAW
from analysis.pretrain_law import STATS as PRETRAIN_STATS
from analysis.protocol import budget_limited_runs, per_n_table, protocol_lines

MAX_LISTED = 200  # rows of the problem and budget-limited lists shown in the report
HOLLOW = ("hollow markers: at least one run at that N was budget-limited (its second half of training lowered the best "
          "validation error by more than 5 %: more steps would likely help)")  # fmt: skip
HOLLOW_FIGURES = ("error_vs_n", "mixed_pretraining", "strategies")  # they mark budget-limited runs (when recorded)
GALLERY_TEXT = ("Per downstream system and shift, the first test samples: source (coefficients below it), true "
                "solution, the fine-tuned and scratch models' predictions at the smallest and largest N (widest "
                "model, first seed) from their best checkpoints, and each error map; fields share one colour "
                "scale per sample, errors another.")
CAPTIONS = {
    "error_vs_n": "test error vs N, fine-tuned vs scratch (zero-shot dotted), dashed power-law fits",
    "mixed_pretraining": "mixture vs same-system pretraining vs scratch, largest model",
    "strategies": "error vs N per pretraining strategy and augmentation, largest model",
    "data_transferred": "effective data transferred D_T = D_E - D_F per model size (geometric mean over seeds), "
                        "dashed: the fitted law D_T = k D_F^alpha P^beta; hollow: D_E read from the scratch fit beyond "
                        "its sampled N",
    "joint_law": "error vs N per model size, dashed: the joint law err = E + A P^-a + B N^-b of each initialisation",
    "pretrain_size": "test error vs pretraining samples P per strategy at each downstream N (mean over seeds, bars: "
                     "min/max), dashed: the fitted law err = a P^-b + c with its 95 % band, dotted: scratch",
    "rollout": "next_step runs: relative L2 of each rolled-out frame vs rollout step, per strategy at each panel's "
               "largest N (mean over seeds, bars: min/max); their test_rel_l2 is the error over the whole rollout",
}  # fmt: skip
STRATEGY_TITLE = ("Mean test relative L2 per pretraining strategy and augmentation (pretraining/downstream where "
                  "both vary; scratch: strategy none), by downstream N")
MULTIPLIER_TEXT = (
    "n_scratch / N: how many times more samples training from scratch needs to reach the fine-tuned mean error at "
    f"the fine-tuned curve's {SMALL_N} smallest N. The measured value (log-log interpolation between sampled N of "
    "both curves) comes first, with a 95 % bootstrap interval over the runs (seeds) at each N; the fit-based value "
    "pairs the two curves' bootstrap fits and is marked extrapolated where scratch's fit is read beyond its sampled "
    "N. Numbers are rounded to what their intervals support; (>=x): scratch never reaches the error in some "
    "resamples, so the interval is open above."
)
PRETRAIN_TEXT = (
    "Downstream error against the number of pretraining samples P, per fine-tuned curve (system, shift, downstream "
    "N, model, strategy and the other varied axes): the power law fitted to the runs (a robust fit in log space, the "
    "offset c from 4 distinct P on, else c = 0); intervals: 95 % bootstrap over seeds (pretraining_size.csv lists "
    "every parameter's)."
)
LAW_TEXT = (
    "Effective data transferred (Hernandez et al. 2021): D_E is the number of samples the scratch curve (same "
    "system, shift, model size) needs to reach a fine-tuned run's error, read from its fitted power law; "
    f"D_T = D_E - D_F. D_E beyond the scratch curve's sampled N is extrapolated (counted in n_extrapolated) and used "
    f"up to {MAX_EXTRAPOLATION:g}x its largest N; errors the scratch fit never reaches and runs with D_T <= 0 are "
    "left out (data_transferred.csv lists every run and its use). Intervals: 95 % bootstrap over seeds (or runs, "
    "with one seed), each resample reading D_E from the scratch curve's own bootstrap fit."
)


def report_blocks(loaded: LoadedRuns, fits: CurveFits, laws: Laws, tables: dict, figures: list[str],
                  skipped: dict[str, str], gallery: tuple[list[str], dict[str, str]] = ([], {})) -> list[Block]:
    """Every section of the report, in order. ``tables``: name -> (table, "") or (None, why it is absent);
    ``gallery``: the gallery's figure names and the ones it skipped (name -> why)."""
    plan = loaded.plan or {}
    blocks = [Block("heading", "Jobs"), Block("table", pd.DataFrame([loaded.counts()]))]
    blocks += [Block("text", loaded.stale_note)] if loaded.stale_note else []
    blocks += [Block("heading", "Protocol"), Block("items", protocol_lines(loaded.ok, plan.get("spec")))]
    per_n = per_n_table(loaded.ok)
    if not per_n.empty:
        blocks += [Block("text", "Per downstream N (fine-tuning and scratch runs):"), Block("table", per_n)]
    improving, note = budget_limited_runs(loaded.ok)
    blocks += _improving(improving, note)
    known = improving is not None  # hollow markers are explained only where the runs record convergence
    blocks += [Block("heading", "Figures")] + [Block("figure", (name, _caption(name, known))) for name in figures]
    blocks += [Block("skip", ("Skipped ", name, "", why)) for name, why in skipped.items()]
    blocks += [Block("heading", "Gallery: predicted and true fields"), Block("text", GALLERY_TEXT)]
    blocks += [Block("figure", (name, "")) for name in gallery[0]]
    blocks += [Block("skip", ("Skipped ", name, "", why)) for name, why in gallery[1].items()]
    blocks += [Block("heading", "Power-law fits: err = a N^-b + c")]
    blocks.append(Block("table", fit_summary(fits)) if not fits.table.empty else Block("text", "No curve has 2+ N."))
    multipliers, why = tables["multipliers"]
    blocks += [Block("heading", "Data-efficiency multipliers at small N")]
    blocks += ([Block("text", MULTIPLIER_TEXT), Block("table", multiplier_display(multipliers))]
               if multipliers is not None else [Block("skip", ("Skipped the ", "multipliers", " table", why))])
    blocks += _laws(laws)
    table, why = tables["strategies"]
    blocks += ([Block("heading", STRATEGY_TITLE), Block("table", table)] if table is not None else
               [Block("skip", ("Skipped the ", "strategies", " table", why))])  # fmt: skip
    blocks += _pretraining(tables["pretraining_size"])
    if loaded.problems:
        blocks += [Block("heading", f"Problems ({len(loaded.problems)})"),
                   Block("items", [f"{j}: {r}" for j, r in loaded.problems[:MAX_LISTED]])]  # fmt: skip
    spec = yaml.safe_dump(plan.get("spec", {}), sort_keys=False)
    return blocks + [Block("heading", "Sweep definition"), Block("code", spec)]


def fit_summary(fits: CurveFits) -> pd.DataFrame:
    """The fit table for reading: key columns, n_params, points, b [95% CI], a, c, R^2, converged."""
    t = fits.table
    keys = [FIT_COLUMNS.get(c, c) for c in fits.key_columns]
    return t[keys].assign(
        n_params=t["n_params"], points=t["n_points"], b=[f"{b:.3f} [{lo:.3f}, {hi:.3f}]" for b, lo, hi in
                                                         zip(t["b"], t["b_lo"], t["b_hi"], strict=True)],
        a=t["a"].map("{:.3g}".format), c=t["c"].map("{:.3g}".format), r2=t["r2"].map("{:.3f}".format),
        converged=t["converged"],
    )  # fmt: skip


def law_summary(laws: Laws, law: str) -> pd.DataFrame:
    """One row per fitted group of ``law``: group columns, each parameter as "value [lo, hi]", points, sizes, R^2,
    converged and the fit's notes."""
    t = laws.table[laws.table["law"] == law]
    if t.empty:
        return t
    group = [FIT_COLUMNS.get(c, c) for c in laws.group_columns]
    t = t.assign(text=[_value_ci(v, lo, hi) for v, lo, hi in zip(t["value"], t["lo"], t["hi"], strict=True)])
    wide = t.pivot_table(index=group, columns="param", values="text", aggfunc="first", sort=False)
    wide = wide[list(dict.fromkeys(t["param"]))].reset_index()
    stats = t.drop_duplicates(group)[[*group, "n_points", "n_sizes", "n_extrapolated", "r2", "converged", "message"]]
    out = wide.merge(stats, on=group).assign(r2=lambda f: f["r2"].map("{:.3f}".format))
    return out.drop(columns=["n_extrapolated"] if law == "joint" else []).rename(columns={"message": "notes"})


def pretrain_summary(table: pd.DataFrame) -> pd.DataFrame:
    """The pretraining-size laws for reading: key columns, each parameter as "value [lo, hi]", points, the range of
    P, R^2, converged."""
    keys = [c for c in table.columns if c not in PRETRAIN_STATS]
    return table[keys].assign(**{k: [_value_ci(v, lo, hi) for v, lo, hi in
                                     zip(table[k], table[f"{k}_lo"], table[f"{k}_hi"], strict=True)] for k in "bac"},
                              points=table["n_points"], P=[f"{lo:g}-{hi:g}" for lo, hi in
                                                           zip(table["p_min"], table["p_max"], strict=True)],
                              r2=table["r2"].map("{:.3f}".format), converged=table["converged"])  # fmt: skip


def _pretraining(entry: tuple[pd.DataFrame | None, str]) -> list[Block]:
    table, why = entry
    heading = Block("heading", f"Pretraining-set size: {PRETRAIN_LAW}")
    if table is None:
        return [heading, Block("skip", ("Skipped the ", "pretraining_size", " table", why))]
    return [heading, Block("text", PRETRAIN_TEXT), Block("table", pretrain_summary(table))]


def _value_ci(value: float, lo: float, hi: float) -> str:
    if np.isnan(value):
        return "-"
    return f"{value:.3g}" if np.isnan(lo) else f"{value:.3g} [{lo:.3g}, {hi:.3g}]"


def _caption(figure: str, improving_known: bool) -> str:
    hollow = improving_known and figure in HOLLOW_FIGURES
    return CAPTIONS.get(figure, "") + (f"; {HOLLOW}" if hollow else "")


def _improving(table: pd.DataFrame | None, note: str) -> list[Block]:
    if table is None:
        return [Block("heading", "Budget-limited runs: unknown"), Block("text", note + ".")]
    blocks = [Block("heading", f"Budget-limited runs: {len(table)}")]
    if table.empty:
        return blocks + [Block("text", "No run's second half of training lowered its best validation error by more "
                                       f"than 5 %{note}.")]
    shown = f" (the first {MAX_LISTED})" if len(table) > MAX_LISTED else ""
    text = ("Their second half of training lowered the best validation error by more than 5 %: more steps would "
            "likely lower their error, so "
            f"their points (hollow in the error-vs-N figures) understate what that N can reach{note}{shown}.")
    return blocks + [Block("text", text), Block("table", table.head(MAX_LISTED))]


def _laws(laws: Laws) -> list[Block]:
    blocks = [Block("heading", "Transfer scaling laws"), Block("text", LAW_TEXT)]
    for law, formula in LAWS.items():
        table = law_summary(laws, law)
        blocks.append(Block("text", f"{formula}:"))
        blocks.append(Block("table", table) if not table.empty else Block("text", "no group supports this law."))
    blocks += [Block("skip", ("No ", law, f" law for {group}", why)) for law, group, why in laws.skipped]
    return blocks
