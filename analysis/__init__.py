"""Analysis of a sweep's results: load the runs, fit power laws and transfer laws, draw the papers' figures, write the
report.

    from analysis import load_runs, fit, build_report
    report = build_report(Path("results/scaling"))   # -> results/scaling/report/report.html
"""

from analysis.claims import check_readings, claims_for
from analysis.holdout import holdout_table
from analysis.laws import Laws, fit_laws
from analysis.load import LoadedRuns, ReportError, load_runs
from analysis.multipliers import format_estimate, round_to_interval, small_n_multipliers
from analysis.powerlaw import PowerLawFit, efficiency_multiplier, efficiency_multiplier_interp, fit
from analysis.report import ReportResult, build_report
from analysis.transfer import LawFit, effective_data, fit_joint, fit_transfer

__all__ = [
    "LawFit",
    "Laws",
    "LoadedRuns",
    "PowerLawFit",
    "ReportError",
    "ReportResult",
    "build_report",
    "check_readings",
    "claims_for",
    "effective_data",
    "efficiency_multiplier",
    "efficiency_multiplier_interp",
    "fit",
    "fit_joint",
    "fit_laws",
    "fit_transfer",
    "format_estimate",
    "holdout_table",
    "load_runs",
    "round_to_interval",
    "small_n_multipliers",
]
