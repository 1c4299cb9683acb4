"""``build_report``: a sweep folder -> figures (PNG + PDF), fits.parquet/.csv (one row per power-law curve),
scaling_laws.parquet/.csv (the transfer laws: one row per law, group and parameter), multipliers.csv (the small-N
data-efficiency multipliers with their intervals), data_transferred.csv (each fine-tuned run's D_F, D_E, D_T),
pretraining_size.csv (the laws of error vs pretraining samples, when the sweep varies pretrain.n_train),
holdout.csv (every fit refitted without its largest N or model, against what was left out: ``analysis.holdout``),
compute.csv, compute_optimal.csv and residuals.csv (every run's FLOPs, the compute-optimal allocation of each joint
law, whose exponents and break-even computes join scaling_laws.csv, and every fit's residuals:
``analysis.compute_report``),
claims.csv (every number a reading may quote: ``analysis.claims``),
strategies.csv (when the sweep compares pretraining strategies), architectures.csv (when it compares model families:
``analysis.architectures``), evaluations.csv and its figure (when jobs were scored on other sources or grids:
``analysis.figures.evaluations``), the gallery of predicted and true fields
(``analysis.figures.gallery``, from the jobs' best checkpoints), report.html and report.md.

Every file is written atomically (temporary name + rename). Fits depend only on the runs and the seed, so the
same inputs give byte-identical fits and scaling-law tables.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.image import imsave

from analysis.architectures import family_table
from analysis.claims import claims_table
from analysis.compute_report import analyse_compute, compute_blocks, compute_tables, no_allocation
from analysis.document import to_html, to_markdown
from analysis.figures import FIGURES, LAW_FIGURES, fit_curves
from analysis.figures.compute_figures import compute_optimal_figure, error_vs_compute, residuals_figure
from analysis.figures.evaluations import eval_figure, eval_rows, eval_table, failure_line
from analysis.figures.gallery import gallery
from analysis.figures.pretrain_figure import pretrain_size
from analysis.figures.strategy import strategy_table
from analysis.figures.style import DPI
from analysis.holdout import holdout_table
from analysis.laws import fit_laws
from analysis.load import ReportError, check_metric, load_runs
from analysis.multipliers import small_n_multipliers
from analysis.pretrain_law import fit_pretrain_sizes
from analysis.sections import report_blocks
from harness.store.atomic import write_bytes_atomic
from harness.train import DEFAULT_METRIC

NO_MULTIPLIERS = "no fine-tuned curve has a scratch curve with the same config"
NO_POINTS = "no fine-tuned run has a scratch curve fit to read its effective data from"
NO_LAWS = "no group of runs supports a transfer law (see the report for why)"
NO_HOLDOUT = "no fit has enough distinct N (or model sizes) to be refitted without its largest"
PARQUET_TABLES = ("scaling_laws",)  # tables also written as Parquet (fits.parquet always is)


@dataclass(frozen=True)
class ReportResult:
    """Where the report went and what it found."""

    out_dir: Path
    html: Path
    markdown: Path
    fits_parquet: Path
    fits_csv: Path
    figures: dict[str, Path]  # figure name -> PNG (a PDF lies beside it)
    skipped: dict[str, str]  # figure name -> why the sweep cannot show it
    counts: dict[str, int]
    problems: list[tuple[str, str]]
    tables: dict[str, Path] = field(default_factory=dict)  # table name -> CSV (PARQUET_TABLES: .parquet beside it)
    tables_skipped: dict[str, str] = field(default_factory=dict)  # table name -> why the sweep cannot show it
    gallery_skipped: dict[str, str] = field(default_factory=dict)  # gallery figure -> why it cannot be drawn
    stale_note: str = ""  # the line on runs no longer in the plan ("" when none, harness.store.stale)


def build_report(
    sweep_dir: Path, out_dir: Path | None = None, *, n_boot: int = 1000, seed: int = 0, metric: str = DEFAULT_METRIC
) -> ReportResult:
    """Load the sweep, fit every curve and law, draw the applicable figures and write the report into ``out_dir``.

    ``out_dir`` defaults to ``sweep_dir / "report"``; ``metric`` (one of ``harness.train.METRICS``) is the test
    error every fit, claim and figure reads (``analysis.load.use_metric``). Raises ReportError when the sweep has
    no plan or no runs, or ``metric`` is unknown or recorded by no run, before writing anything.
    """
    check_metric(metric)
    sweep_dir = Path(sweep_dir)
    out = Path(out_dir) if out_dir is not None else sweep_dir / "report"
    if not (sweep_dir / "plan.json").exists():
        raise ReportError(f"no results under {sweep_dir} (no plan.json): run `harness submit` first")
    loaded = load_runs(sweep_dir, metric)
    if loaded.all.empty and not loaded.unreadable:
        raise ReportError(f"no results under {sweep_dir} (no runs/*/summary.parquet): run `harness submit` first")
    out.mkdir(parents=True, exist_ok=True)
    fits = fit_curves(loaded.ok, n_boot=n_boot, seed=seed)
    laws = fit_laws(loaded.ok, fits, n_boot=n_boot, seed=seed)
    sizes = fit_pretrain_sizes(loaded.ok, n_boot=n_boot, seed=seed)
    pngs, skipped = {}, {}
    drawers = FIGURES + [(name, partial(draw, laws=laws)) for name, draw in LAW_FIGURES]
    drawers.append(("pretrain_size", partial(pretrain_size, sizes=sizes)))
    comp = analyse_compute(loaded, fits, laws)
    drawers += [("error_vs_compute", partial(error_vs_compute, compute=comp.compute)),
                ("compute_optimal", lambda *_: compute_optimal_figure(comp.optimal, no_allocation(comp, laws))),
                ("residuals", lambda *_: residuals_figure(comp.diagnostics.residuals))]  # fmt: skip
    law_table = pd.concat([laws.table, comp.law_rows], ignore_index=True) if len(comp.law_rows) else laws.table
    evaluated, failed = eval_rows(sweep_dir, loaded.ok)  # jobs scored on other sources: a figure and a table
    eval_failed = failure_line(failed)  # and a line for the sources whose scoring failed, when any
    if not evaluated.empty:
        drawers.append(("evaluations", partial(eval_figure, rows=evaluated)))
    for name, draw in drawers:
        result = draw(loaded.ok, fits)
        if result.figure is None:
            skipped[name] = result.skip
            continue
        pngs[name], pdf = _render_both(result.figure)
        _write(out / f"{name}.png", pngs[name])
        _write(out / f"{name}.pdf", pdf)
    pictures = gallery(loaded.ok, loaded.plan.jobs if loaded.plan else [], sweep_dir.parent)
    for name, figure in pictures.figures.items():
        pngs[name], pdf = _render_both(figure)
        _write(out / f"{name}.png", pngs[name])
        _write(out / f"{name}.pdf", pdf)
    multipliers = small_n_multipliers(loaded.ok, fits, n_boot=n_boot, seed=seed)
    holdout = holdout_table(loaded.ok, fits, laws, n_boot=n_boot, seed=seed)
    families = family_table(loaded.ok, fits, multipliers, laws)
    tables = {"strategies": strategy_table(loaded.ok),
              **({"architectures": families} if families[0] is not None else {}),  # a sweep of one family: none
              **({"evaluations": (eval_table(evaluated)[0], eval_failed)} if not evaluated.empty or eval_failed
                 else {}),
              "multipliers": (multipliers, "") if not multipliers.empty else (None, NO_MULTIPLIERS),
              "scaling_laws": (law_table, "") if not law_table.empty else (None, NO_LAWS),
              "data_transferred": (laws.points, "") if not laws.points.empty else (None, NO_POINTS),
              "pretraining_size": (sizes.table, "") if not sizes.table.empty else (None, sizes.skip),
              "holdout": (holdout, "") if not holdout.empty else (None, NO_HOLDOUT),
              **compute_tables(comp, laws),
              "claims": (claims_table(loaded.ok, fits, laws, multipliers, holdout, comp.decades), "")}  # fmt: skip
    for name, table in [("fits", fits.table)] + [(n, t) for n, (t, _) in tables.items() if t is not None]:
        if name in ("fits", *PARQUET_TABLES):
            sink = pa.BufferOutputStream()
            pq.write_table(pa.Table.from_pandas(table, preserve_index=False), sink)
            _write(out / f"{name}.parquet", sink.getvalue().to_pybytes())
        _write(out / f"{name}.csv", table.to_csv(index=False).encode())
    papers = [name for name in pngs if name not in pictures.figures]
    blocks = report_blocks(loaded, fits, laws, tables, papers, skipped, (list(pictures.figures), pictures.skipped),
                           compute_blocks(comp, laws), comp.diagnostics)
    title = str(loaded.plan.sweep if loaded.plan else None)
    _write(out / "report.html", to_html(title, blocks, pngs).encode())
    _write(out / "report.md", to_markdown(title, blocks).encode())
    return ReportResult(
        out_dir=out, html=out / "report.html", markdown=out / "report.md", fits_parquet=out / "fits.parquet",
        fits_csv=out / "fits.csv", figures={name: out / f"{name}.png" for name in pngs}, skipped=skipped,
        counts=loaded.counts(), problems=loaded.problems,
        tables={name: out / f"{name}.csv" for name, (table, _) in tables.items() if table is not None},
        tables_skipped={name: why for name, (table, why) in tables.items() if table is None},
        gallery_skipped=pictures.skipped, stale_note=loaded.stale_note,
    )  # fmt: skip


def _render_both(figure: Figure) -> tuple[bytes, bytes]:
    """PNG and PDF of ``figure`` from one layout: the Agg draw runs the constrained layout and renders the PNG,
    the PDF reuses that layout. savefig draws a figure that has a layout engine twice (a dry run to lay it out, then
    the page), even a placeholder engine ("none"): with none at all the PDF is drawn once, the same bytes."""
    canvas = FigureCanvasAgg(figure)
    figure.set_dpi(DPI)
    canvas.draw()
    png = io.BytesIO()
    imsave(png, canvas.buffer_rgba(), format="png", origin="upper", dpi=DPI)
    figure.set_layout_engine(None)
    return png.getvalue(), _render(figure, "pdf")


def _render(figure: object, fmt: str) -> bytes:
    buf = io.BytesIO()
    metadata = {"CreationDate": None} if fmt == "pdf" else None  # no timestamp: same input, same bytes
    figure.savefig(buf, format=fmt, dpi=DPI, metadata=metadata)
    return buf.getvalue()


def _write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (the harness's one atomic writer)."""
    write_bytes_atomic(path, data)


