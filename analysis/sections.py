"""What the report says, in order: jobs, protocol, budget-limited runs, figures, power-law fits, data-efficiency
multipliers, transfer laws, the model families compared, held-out extrapolation, the strategy table, the
pretraining-size laws, claims, problems and the sweep definition (as ``analysis.document`` blocks, written out as
HTML and Markdown by ``analysis.report``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import yaml

from analysis.architectures import family_display
from analysis.curves import FIT_COLUMNS, CurveFits
from analysis.diagnostics import Diagnostics
from analysis.document import Block
from analysis.intervals import CLUSTER_SEEDS, MIN_DF, SHAPE_DF
from analysis.laws import LAWS, MAX_EXTRAPOLATION, Laws
from analysis.load import LoadedRuns
from analysis.multipliers import SMALL_N, multiplier_display
from analysis.pretrain_law import LAW as PRETRAIN_LAW
from analysis.pretrain_law import STATS as PRETRAIN_STATS
from analysis.protocol import EDGE_COLUMNS, budget_limited_runs, edge_points, per_n_table, protocol_lines
from harness.train import DEFAULT_METRIC, METRICS

MAX_LISTED = 200  # rows of the problem, budget-limited and edge lists shown in the report
_EDGE_NAMES = ["id", "stage", "system", "shift", "width", "modes", "seed", "N"]
HOLLOW = ("hollow markers: at least one run at that N was budget-limited (its second half of training lowered the best "
          "validation error by more than 5 %: more steps would likely help)")  # fmt: skip
HOLLOW_FIGURES = ("error_vs_n", "mixed_pretraining", "strategies")  # they mark budget-limited runs (when recorded)
GALLERY_TEXT = ("Per downstream system and shift, the first test samples: source (coefficients below it), true "
                "solution, the fine-tuned and scratch models' predictions at the smallest and largest N (largest "
                "model, first seed; per model family in a sweep over families) from their best checkpoints, and each "
                "error map; fields share one colour scale per sample, errors another.")
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
    "error_vs_compute": "test error vs training FLOPs per model size (points: N), black: the compute frontier (lower "
                        "envelope); fine-tuned runs with their pretraining amortised and counted in full",
    "compute_optimal": "compute-optimal model size P*(C) and its error err*(C) from the joint law, with intervals; "
                       "dotted beyond the sampled sizes or N",
    "residuals": "log residuals of every power-law, joint-law and D_T fit (residuals.csv)",
    "evaluations": "test error vs N of the trained jobs on other sources and grids (`harness eval`, `eval:`), "
                   "solid fine-tuned, dashed scratch, largest model, mean over seeds",
    "rollout": "next_step runs: the error of each rolled-out frame vs rollout step, per strategy at each panel's "
               "largest N (mean over seeds, bars: min/max); their test error is that of the whole rollout",
}  # fmt: skip
FAMILY_TEXT = (
    "Per system, shift, model family and size, for the reference transfer: the power-law exponents b of the "
    "fine-tuned and scratch curves, the gain (scratch / fine-tuned mean test error) at the smallest and largest N "
    "both have, the measured data-efficiency multiplier at the smallest N, and the family's effective-data law "
    "exponents alpha (D_F) and beta (P); each as value [interval], the intervals those of the tables above, with "
    "their labels there (gains: over the seeds, a t interval from three seeds on each side, the range over them "
    "with two). Read a difference between families only where their 95 % intervals do not overlap."
)
EVAL_TEXT = ("Mean test relative L2 (over seeds: runs) of the trained jobs on each evaluation source and grid "
             "(`harness eval`, a sweep's `eval:`); resolution above trained_resolution is zero-shot super-resolution.")
STRATEGY_TITLE = ("Mean test {metric} per pretraining strategy and augmentation (pretraining/downstream where "
                  "both vary; scratch: strategy none), by downstream N")
INTERVAL_TEXT = (
    f"Intervals (analysis.intervals): with fewer than {CLUSTER_SEEDS} distinct seeds a residual bootstrap within the "
    "design (each run keeps its N and seed; its log-space noise is redrawn from the fit's leverage-adjusted residuals "
    "and scaled by a draw of the noise level's own uncertainty, so that the interval is a t one with the residual "
    f"degrees of freedom); from {CLUSTER_SEEDS} seeds on whole seeds are resampled and the interval read at the "
    f"expanded level. An interval is a 95 % one only with at least {MIN_DF} residual degrees of freedom and "
    f"{SHAPE_DF} distinct N (or design points) beyond the law's parameters; the interval column says what each one "
    "is, and few N flags a fit whose form the data cannot check."
)
MULTIPLIER_TEXT = (
    "n_scratch / N: how many times more samples training from scratch needs to reach the fine-tuned mean error at "
    f"the fine-tuned curve's {SMALL_N} smallest N. The measured value (log-log interpolation between sampled N of "
    "both curves) comes first, with an interval from t draws of the mean error at every N of both curves (the "
    "spread over seeds within N, pooled over each curve's N); the fit-based value pairs the two curves' bootstrap "
    "fits and is marked extrapolated where scratch's fit is read beyond its sampled N. Numbers are rounded to what "
    "their intervals support; an interval that is not a 95 % one is followed by what it is [in brackets]; (>=x): "
    "scratch never reaches the error in some resamples, so the interval is open above. Notes flag a fit-based value "
    "whose target lies within the interval of a fitted floor c: it hangs on where exactly the floor lies."
)
PRETRAIN_TEXT = (
    "Downstream error against the number of pretraining samples P, per fine-tuned curve (system, shift, downstream "
    "N, model, strategy and the other varied axes): the power law fitted to the runs (a robust fit in log space, the "
    "offset c from 4 distinct P on, else c = 0); intervals: 95 % bootstrap over seeds (pretraining_size.csv lists "
    "every parameter's)."
)
HOLDOUT_TEXT = (
    "Every fit refitted without its largest N (laws over size also without their largest model) predicts what was "
    "left out. Observed: the geometric mean of the left-out runs; the interval is a prediction interval for that "
    "mean (the refit's bootstrap predictions plus the noise of a mean of as many runs, at each resample's noise "
    "level), labelled as the refit's intervals are. A curve of 4 distinct N is refitted on 3, without its floor."
)
CLAIMS_TEXT = (
    "Every number a reading may quote (claims.csv): its value, interval and what the interval is, the runs it rests "
    "on and the text to quote. A reading quotes a claim with a marker right after the number, `16x<!--claim:ID-->` "
    "(analysis.claims.check_readings checks that it matches and is not more precise than its interval)."
)
MAX_CLAIMS = 400  # claims listed in the report (claims.csv has them all)
LAW_TEXT = (
    "Effective data transferred (Hernandez et al. 2021): D_E is the number of samples the scratch curve (same "
    "system, shift, model size) needs to reach a fine-tuned run's error, read from its fitted power law; "
    f"D_T = D_E - D_F. D_E beyond the scratch curve's sampled N is extrapolated (counted in n_extrapolated) and used "
    f"up to {MAX_EXTRAPOLATION:g}x its largest N; errors the scratch fit never reaches and runs with D_T <= 0 are "
    "left out (data_transferred.csv lists every run and its use). Intervals: 95 % bootstrap over seeds (or runs, "
    "with one seed), each resample reading D_E from the scratch curve's own bootstrap fit."
)


def report_blocks(loaded: LoadedRuns, fits: CurveFits, laws: Laws, tables: dict, figures: list[str],
                  skipped: dict[str, str], gallery: tuple[list[str], dict[str, str]] = ([], {}),
                  compute: list[Block] | None = None, diagnostics: Diagnostics | None = None) -> list[Block]:
    """Every section of the report, in order. ``tables``: name -> (table, "") or (None, why it is absent);
    ``gallery``: the gallery's figure names and the ones it skipped (name -> why); ``compute``: the compute
    sections (``analysis.compute_report``), after the transfer laws; ``diagnostics``: the warnings shown beside the
    fits."""
    spec = loaded.plan.spec if loaded.plan else None
    blocks = [Block("heading", "Jobs"), Block("table", pd.DataFrame([loaded.counts()]))]
    blocks += [Block("text", loaded.stale_note)] if loaded.stale_note else []
    blocks += [Block("heading", "Protocol"), Block("text", metric_line(loaded.metric)),
               Block("items", protocol_lines(loaded.ok, spec))]
    per_n = per_n_table(loaded.ok)
    if not per_n.empty:
        blocks += [Block("text", "Per downstream N (fine-tuning and scratch runs):"), Block("table", per_n)]
    edges = edge_points(loaded.ok)
    edges = edges[edges["edge"] != ""].drop(columns=["low", "high"])
    if not edges.empty:
        shown = f" (the first {MAX_LISTED})" if len(edges) > MAX_LISTED else ""
        blocks += [Block("text", f"Tuned points chosen at an edge of their search space{shown}:"),
                   Block("table", edges.rename(columns=dict(zip(EDGE_COLUMNS, _EDGE_NAMES, strict=True)))
                         .head(MAX_LISTED))]  # fmt: skip
    improving, note = budget_limited_runs(loaded.ok)
    blocks += _improving(improving, note)
    known = improving is not None  # hollow markers are explained only where the runs record convergence
    blocks += [Block("heading", "Figures")] + [Block("figure", (name, _caption(name, known))) for name in figures]
    blocks += [Block("skip", ("Skipped ", name, "", why)) for name, why in skipped.items()]
    blocks += [Block("heading", "Gallery: predicted and true fields"), Block("text", GALLERY_TEXT)]
    blocks += [Block("figure", (name, "")) for name in gallery[0]]
    blocks += [Block("skip", ("Skipped ", name, "", why)) for name, why in gallery[1].items()]
    blocks += [Block("heading", "Power-law fits: err = a N^-b + c"), Block("text", INTERVAL_TEXT)]
    blocks.append(Block("table", fit_summary(fits, diagnostics)) if not fits.table.empty else
                  Block("text", "No curve has 2+ N."))  # fmt: skip
    multipliers, why = tables["multipliers"]
    blocks += [Block("heading", "Data-efficiency multipliers at small N")]
    blocks += ([Block("text", MULTIPLIER_TEXT), Block("table", multiplier_display(multipliers))]
               if multipliers is not None else [Block("skip", ("Skipped the ", "multipliers", " table", why))])
    blocks += _laws(laws, diagnostics) + (compute or [])
    table, _ = tables.get("architectures", (None, ""))
    if table is not None:  # a sweep of one family says nothing here
        blocks += [Block("heading", "Model families compared"), Block("text", FAMILY_TEXT),
                   Block("table", family_display(table))]
    table, failed = tables.get("evaluations", (None, ""))
    if table is not None or failed:  # only where jobs were scored on other sources
        blocks += [Block("heading", "Scored on other sources and grids"), Block("text", EVAL_TEXT)]
        blocks += ([Block("table", table)] if table is not None else []) + ([Block("text", failed)] if failed else [])
    blocks += _holdout(*tables["holdout"])
    table, why = tables["strategies"]
    title = STRATEGY_TITLE.format(metric=METRICS[loaded.metric])
    blocks += ([Block("heading", title), Block("table", table)] if table is not None else
               [Block("skip", ("Skipped the ", "strategies", " table", why))])  # fmt: skip
    blocks += _pretraining(tables["pretraining_size"])
    blocks += _claims(tables["claims"][0])
    if loaded.problems:
        blocks += [Block("heading", f"Problems ({len(loaded.problems)})"),
                   Block("items", [f"{j}: {r}" for j, r in loaded.problems[:MAX_LISTED]])]  # fmt: skip
    return blocks + [Block("heading", "Sweep definition"), Block("code", yaml.safe_dump(spec or {}, sort_keys=False))]


def metric_line(metric: str) -> str:
    """The sentence naming the error every fit, claim, table and figure of the report reads (``--metric``)."""
    default = "" if metric == DEFAULT_METRIC else f" (not the default, {METRICS[DEFAULT_METRIC]})"
    return (f"Error metric: {METRICS[metric]}{default}, each run's test_{metric} (harness report --metric "
            f"{metric}; harness.train.metrics defines them all); every fit, claim, table and figure reads it.")


def fit_summary(fits: CurveFits, diagnostics: Diagnostics | None = None) -> pd.DataFrame:
    """The fit table for reading: key columns, n_params, points, distinct N, b [interval], a, c [interval], what the
    intervals are, the few-N flag, R^2, converged (and each fit's warning, ``analysis.diagnostics``)."""
    t = fits.table
    keys = [FIT_COLUMNS.get(c, c) for c in fits.key_columns]
    shown = t[keys].assign(
        n_params=t["n_params"], points=t["n_points"], distinct_n=t["n_distinct"],
        b=[f"{b:.3f} [{lo:.3f}, {hi:.3f}]" for b, lo, hi in zip(t["b"], t["b_lo"], t["b_hi"], strict=True)],
        a=t["a"].map("{:.3g}".format),
        c=[value_ci(c, lo, hi) if off else "-" for c, lo, hi, off in zip(t["c"], t["c_lo"], t["c_hi"], t["offset"],
                                                                          strict=True)],
        interval=t["ci"], few_n=t["few_n"].map({True: "few N", False: ""}), r2=t["r2"].map("{:.3f}".format),
        converged=t["converged"],
    )  # fmt: skip
    return _warned(shown, "power_law", diagnostics, keys)


def law_summary(laws: Laws, law: str, diagnostics: Diagnostics | None = None) -> pd.DataFrame:
    """One row per fitted group of ``law``: group columns, each parameter as "value [lo, hi]", points, sizes, R^2,
    converged and the fit's notes (and its warning, ``analysis.diagnostics``)."""
    t = laws.table[laws.table["law"] == law]
    if t.empty:
        return t
    group = [FIT_COLUMNS.get(c, c) for c in laws.group_columns]
    t = t.assign(text=[value_ci(v, lo, hi) for v, lo, hi in zip(t["value"], t["lo"], t["hi"], strict=True)])
    wide = t.pivot_table(index=group, columns="param", values="text", aggfunc="first", sort=False)
    wide = wide[list(dict.fromkeys(t["param"]))].reset_index()
    stats = t.drop_duplicates(group)[[*group, "n_points", "n_sizes", "n_extrapolated", "ci", "r2", "converged",
                                      "message"]]  # fmt: skip
    out = wide.merge(stats, on=group).assign(r2=lambda f: f["r2"].map("{:.3f}".format))
    out = out.drop(columns=["n_extrapolated"] if law == "joint" else [])
    return _warned(out, law, diagnostics, group).rename(columns={"ci": "interval", "message": "notes"})


def _warned(table: pd.DataFrame, fit: str, diagnostics: Diagnostics | None, keys: list[str] | None = None
            ) -> pd.DataFrame:  # fmt: skip
    """``table`` with a ``warning`` column for ``fit`` (its rows keyed by ``keys``, default all its columns)."""
    if diagnostics is None:
        return table
    key_rows = table[keys or list(table.columns)].itertuples(index=False, name=None)
    return table.assign(warning=[diagnostics.warning(fit, key) for key in key_rows])


def pretrain_summary(table: pd.DataFrame) -> pd.DataFrame:
    """The pretraining-size laws for reading: key columns, each parameter as "value [lo, hi]", points, the range of
    P, R^2, converged."""
    keys = [c for c in table.columns if c not in PRETRAIN_STATS]
    return table[keys].assign(**{k: [value_ci(v, lo, hi) for v, lo, hi in
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


def value_ci(value: float, lo: float, hi: float) -> str:
    """A value and its interval as a table cell: ``v [lo, hi]`` to three figures, ``v`` without an interval, "-"
    without a value."""
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


def _laws(laws: Laws, diagnostics: Diagnostics | None = None) -> list[Block]:
    blocks = [Block("heading", "Transfer scaling laws"), Block("text", LAW_TEXT)]
    for law, formula in LAWS.items():
        table = law_summary(laws, law, diagnostics)
        blocks.append(Block("text", f"{formula}:"))
        blocks.append(Block("table", table) if not table.empty else Block("text", "no group supports this law."))
    blocks += [Block("skip", ("No ", law, f" law for {group}", why)) for law, group, why in laws.skipped]
    return blocks


def _holdout(table: pd.DataFrame | None, why: str) -> list[Block]:
    blocks = [Block("heading", "Held-out extrapolation")]
    if table is None:
        return blocks + [Block("skip", ("Skipped the ", "holdout", " table", why))]
    known = table["covered"].notna()
    count = f"The interval covered {int(table.loc[known, 'covered'].astype(bool).sum())} of {int(known.sum())}."
    shown = table.assign(prediction=[value_ci(p, lo, hi) for p, lo, hi in zip(table["predicted"], table["lo"],
                                                                               table["hi"], strict=True)])  # fmt: skip
    shown = shown[["fit", "group", "held_out", "n_params", "N", "runs", "observed", "prediction", "covered", "ci"]]
    return blocks + [Block("text", f"{HOLDOUT_TEXT} {count}"), Block("table", shown.rename(columns={"ci": "interval"}))]


def _claims(table: pd.DataFrame) -> list[Block]:
    shown = f" The first {MAX_CLAIMS} of {len(table)} are listed." if len(table) > MAX_CLAIMS else ""
    return [Block("heading", f"Claims: {len(table)}"), Block("text", CLAIMS_TEXT + shown),
            Block("table", table[["id", "quantity", "display", "runs", "ref"]].head(MAX_CLAIMS))]
