"""``build_report``: a sweep folder -> figures (PNG + PDF), fits.parquet/.csv, strategies.csv (when the sweep
compares pretraining strategies), report.html and report.md.

Every file is written atomically (temporary name + rename). Fits depend only on the runs and the seed, so the
same inputs give byte-identical fits.csv and fits.parquet.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.image import imsave

from analysis.figures import FIGURES, CurveFits, fit_curves
from analysis.figures.curves import FIT_COLUMNS, N, downstream_points, mean_points, pairs, primary
from analysis.figures.strategy import strategy_table
from analysis.figures.style import DPI
from analysis.load import LoadedRuns, ReportError, load_runs
from analysis.powerlaw import efficiency_multiplier, efficiency_multiplier_interp
from harness.files import write_bytes_atomic

SMALL_N = 2  # multipliers are reported at the fine-tuned curve's this many smallest N
_CSS = (
    "body{font-family:sans-serif;max-width:1200px;margin:2em auto;color:#222}"
    "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
    "img{max-width:100%}pre{background:#f6f6f6;padding:1em;overflow:auto}.skip{color:#a60}"
)


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
    tables: dict[str, Path] = field(default_factory=dict)  # table name -> CSV (strategies: errors per strategy)
    tables_skipped: dict[str, str] = field(default_factory=dict)  # table name -> why the sweep cannot show it


def build_report(
    sweep_dir: Path, out_dir: Path | None = None, *, n_boot: int = 1000, seed: int = 0
) -> ReportResult:
    """Load the sweep, fit every curve, draw the applicable figures and write the report into ``out_dir``.

    ``out_dir`` defaults to ``sweep_dir / "report"``. Raises ReportError when the sweep has no plan or no runs.
    """
    sweep_dir = Path(sweep_dir)
    out = Path(out_dir) if out_dir is not None else sweep_dir / "report"
    if not (sweep_dir / "plan.json").exists():
        raise ReportError(f"no results under {sweep_dir} (no plan.json): run `harness submit` first")
    loaded = load_runs(sweep_dir)
    if loaded.all.empty and not loaded.unreadable:
        raise ReportError(f"no results under {sweep_dir} (no runs/*/summary.parquet): run `harness submit` first")
    out.mkdir(parents=True, exist_ok=True)
    fits = fit_curves(loaded.ok, n_boot=n_boot, seed=seed)
    pngs, skipped = {}, {}
    for name, draw in FIGURES:
        result = draw(loaded.ok, fits)
        if result.figure is None:
            skipped[name] = result.skip
            continue
        pngs[name], pdf = _render_both(result.figure)
        _write(out / f"{name}.png", pngs[name])
        _write(out / f"{name}.pdf", pdf)
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pandas(fits.table, preserve_index=False), sink)
    _write(out / "fits.parquet", sink.getvalue().to_pybytes())
    _write(out / "fits.csv", fits.table.to_csv(index=False).encode())
    multipliers = small_n_multipliers(loaded.ok, fits)
    tables = _tables(loaded.ok)
    for name, (table, _) in tables.items():
        if table is not None:
            _write(out / f"{name}.csv", table.to_csv(index=False).encode())
    _write(out / "report.html", _html(loaded, fits, multipliers, pngs, skipped, tables).encode())
    _write(out / "report.md", _markdown(loaded, fits, multipliers, pngs, skipped, tables).encode())
    return ReportResult(
        out_dir=out, html=out / "report.html", markdown=out / "report.md", fits_parquet=out / "fits.parquet",
        fits_csv=out / "fits.csv", figures={name: out / f"{name}.png" for name in pngs}, skipped=skipped,
        counts=loaded.counts(), problems=loaded.problems,
        tables={name: out / f"{name}.csv" for name, (table, _) in tables.items() if table is not None},
        tables_skipped={name: why for name, (table, why) in tables.items() if table is None},
    )  # fmt: skip


TABLE_TITLES = {"strategies": "Mean test relative L2 per pretraining strategy and augmentation (pretraining/"
                              "downstream where both vary; scratch: strategy none), by downstream N"}  # fmt: skip


def _tables(runs: pd.DataFrame) -> dict[str, tuple[pd.DataFrame | None, str]]:
    """Name -> (table, "") or (None, why the sweep cannot show it), in report order."""
    return {"strategies": strategy_table(runs)}


def small_n_multipliers(runs: pd.DataFrame, fits: CurveFits) -> pd.DataFrame:
    """How many times more samples scratch needs to match fine-tuning's error at its smallest N.

    One row per (matched curve pair, N among the fine-tuned curve's SMALL_N smallest): the fine-tuned mean
    error there, and n_scratch / N from interpolation (nan beyond the measured N) and from the fits.
    """
    rows = []
    for ft, sc in pairs(primary(downstream_points(runs)), fits.key_columns):
        mf, ms = mean_points(ft), mean_points(sc)
        fit_f, fit_s = fits.get(ft), fits.get(sc)
        for n, target in zip(mf[N][:SMALL_N], mf["mean"][:SMALL_N], strict=True):
            interp = efficiency_multiplier_interp(ms[N], ms["mean"], mf[N], mf["mean"], np.array([target]))
            fitted = efficiency_multiplier(fit_s, fit_f, np.array([target])) if fit_f and fit_s else [np.nan]
            rows.append({
                **{FIT_COLUMNS.get(c, c): ft[c].iloc[0] for c in fits.key_columns if c != "stage"},
                "n_params": int(round(ft["n_params"].mean())), "N": int(n), "err_finetune": float(target),
                "multiplier_interp": float(interp[0]), "multiplier_fit": float(fitted[0]),
            })  # fmt: skip
    return pd.DataFrame(rows)


def _render_both(figure: Figure) -> tuple[bytes, bytes]:
    """PNG and PDF of ``figure`` from one layout: the Agg draw runs the constrained layout and renders the PNG,
    the PDF reuses that layout (savefig would lay the figure out again before each format)."""
    canvas = FigureCanvasAgg(figure)
    figure.set_dpi(DPI)
    canvas.draw()
    png = io.BytesIO()
    imsave(png, canvas.buffer_rgba(), format="png", origin="upper", dpi=DPI)
    figure.set_layout_engine("none")
    return png.getvalue(), _render(figure, "pdf")


def _render(figure: object, fmt: str) -> bytes:
    buf = io.BytesIO()
    metadata = {"CreationDate": None} if fmt == "pdf" else None  # no timestamp: same input, same bytes
    figure.savefig(buf, format=fmt, dpi=DPI, metadata=metadata)
    return buf.getvalue()


def _write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (the harness's one atomic writer)."""
    write_bytes_atomic(path, data)


def _fit_summary(fits: CurveFits) -> pd.DataFrame:
    """The fit table for reading: key columns, n_params, points, b [95% CI], a, c, R^2, converged."""
    t = fits.table
    keys = [FIT_COLUMNS.get(c, c) for c in fits.key_columns]
    return t[keys].assign(
        n_params=t["n_params"], points=t["n_points"], b=[f"{b:.3f} [{lo:.3f}, {hi:.3f}]" for b, lo, hi in
                                                         zip(t["b"], t["b_lo"], t["b_hi"], strict=True)],
        a=t["a"].map("{:.3g}".format), c=t["c"].map("{:.3g}".format), r2=t["r2"].map("{:.3f}".format),
        converged=t["converged"],
    )  # fmt: skip


def _fmt(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.apply(lambda col: col.map("{:.3g}".format) if col.dtype.kind == "f" else
                       col.astype(object).where(col.notna(), "").astype(str))  # fmt: skip


def _html(loaded: LoadedRuns, fits: CurveFits, mult: pd.DataFrame, pngs: dict, skipped: dict, tables: dict) -> str:
    plan = loaded.plan or {}
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>Report: {html.escape(str(plan.get('sweep')))}"
             f"</title><style>{_CSS}</style></head><body><h1>Sweep {html.escape(str(plan.get('sweep')))}</h1>",
             "<h2>Jobs</h2>", pd.DataFrame([loaded.counts()]).to_html(index=False)]  # fmt: skip
    parts.append("<h2>Figures</h2>")
    for name, png in pngs.items():
        data = base64.b64encode(png).decode()
        img = f"<img alt='{name}' src='data:image/png;base64,{data}'>"
        parts.append(f"<figure>{img}<figcaption>{name}</figcaption></figure>")
    parts += [f"<p class='skip'>Skipped <b>{name}</b>: {html.escape(why)}</p>" for name, why in skipped.items()]
    parts += ["<h2>Power-law fits: err = a N<sup>-b</sup> + c</h2>", _fit_summary(fits).to_html(index=False)]
    if not mult.empty:
        parts += ["<h2>Data-efficiency multipliers at small N</h2>", _fmt(mult).to_html(index=False)]
    for name, (table, why) in tables.items():
        if table is None:
            parts.append(f"<p class='skip'>Skipped the <b>{name}</b> table: {html.escape(why)}</p>")
        else:
            parts += [f"<h2>{html.escape(TABLE_TITLES[name])}</h2>", _fmt(table).to_html(index=False)]
    if loaded.problems:
        shown = "".join(f"<li>{html.escape(j)}: {html.escape(r)}</li>" for j, r in loaded.problems[:200])
        parts.append(f"<h2>Problems ({len(loaded.problems)})</h2><ul>{shown}</ul>")
    spec = yaml.safe_dump(plan.get("spec", {}), sort_keys=False)
    parts += ["<h2>Sweep definition</h2>", f"<pre>{html.escape(spec)}</pre></body></html>"]
    return "\n".join(parts)


def _md_table(frame: pd.DataFrame) -> str:
    text = _fmt(frame)
    lines = ["| " + " | ".join(text.columns) + " |", "|" + "---|" * len(text.columns)]
    lines += ["| " + " | ".join(row) + " |" for row in text.itertuples(index=False, name=None)]
    return "\n".join(lines)


def _markdown(loaded: LoadedRuns, fits: CurveFits, mult: pd.DataFrame, pngs: dict, skipped: dict,
              tables: dict) -> str:  # fmt: skip
    plan = loaded.plan or {}
    counts = ", ".join(f"{k} {v}" for k, v in loaded.counts().items())
    parts = [f"# Sweep {plan.get('sweep')}", "", f"Jobs: {counts}.", "", "## Fitted exponents (err = a N^-b + c)", ""]
    parts += [_md_table(_fit_summary(fits)) if not fits.table.empty else "No curve has two or more N.", ""]
    if not mult.empty:
        parts += ["## Data-efficiency multipliers at small N (n_scratch / N to match fine-tuning)", ""]
        parts += [_md_table(mult), ""]
    for name, (table, why) in tables.items():
        if table is None:
            parts += [f"Skipped the {name} table: {why}.", ""]
        else:
            parts += [f"## {TABLE_TITLES[name]}", "", _md_table(table), "", f"Also in [{name}.csv]({name}.csv).", ""]
    parts += ["## Figures", ""] + [f"- [{name}]({name}.png) ([pdf]({name}.pdf))" for name in pngs]
    parts += [f"- {name}: skipped, {why}" for name, why in skipped.items()]
    return "\n".join(parts) + "\n"
