"""Analysis of a sweep's results: load the runs, fit power laws, draw the papers' figures, write the report.

    from analysis import load_runs, fit, build_report
    report = build_report(Path("results/scaling"))   # -> results/scaling/report/report.html
"""

from analysis.load import LoadedRuns, ReportError, load_runs
from analysis.powerlaw import PowerLawFit, efficiency_multiplier, efficiency_multiplier_interp, fit
from analysis.report import ReportResult, build_report

__all__ = [
    "LoadedRuns",
    "PowerLawFit",
    "ReportError",
    "ReportResult",
    "build_report",
    "efficiency_multiplier",
    "efficiency_multiplier_interp",
    "fit",
    "load_runs",
]
