"""Pictures of the fields: a few fixed test samples with the source, the true solution, models' predictions and
their error maps, on shared colour scales (one scale per sample for the solution and the predictions, one for
the errors).

``field_figure`` draws any set of predictions of the same samples (``harness show``: one job);
``gallery`` picks, for each downstream system and shift of a sweep (and each model family, in a sweep over
families), the fine-tuned and scratch jobs at the smallest and largest N and draws one figure each, or says why it
cannot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from analysis.figures.style import STAGE_LABELS
from harness.errors import HarnessError
from harness.job import Job
from harness.job.predict import Fields, predict_job
from harness.models import DEFAULT_ARCH, arch_of, family, sizes_of

SAMPLES = 3  # the first test samples of each dataset: the same ones for every job of a system and shift
STAGES = ("finetune", "scratch")


def field_figure(title: str, labelled: dict[str, Fields]) -> Figure:
    """Per sample, a row of fields (source, truth, each prediction) over a row of error maps (prediction -
    truth); ``labelled`` maps a column label to the Fields of one job, all of the same test samples."""
    first = next(iter(labelled.values()))
    k, cols = len(first.truth), 2 + len(labelled)
    fig = Figure(figsize=(1.9 * cols, 3.6 * k), layout="constrained")
    fig.suptitle(title)
    axes = fig.subplots(2 * k, cols, squeeze=False)
    for i in range(k):
        top, bottom = axes[2 * i], axes[2 * i + 1]
        truth = first.truth[i]
        lo, hi = float(truth.min()), float(truth.max())
        errors = {label: f.prediction[i] - truth for label, f in labelled.items()}
        span = max(float(np.abs(e).max()) for e in errors.values()) or 1.0
        coefs = ", ".join(f"{n}={v[i]:.3g}" for n, v in first.coefficients.items())
        _panel(fig, top[0], first.source[i], f"source #{i}", "viridis")
        bottom[0].text(0.5, 0.5, coefs.replace(", ", "\n"), ha="center", va="center", fontsize=7)
        _panel(fig, top[1], truth, "true solution", "magma", (lo, hi))
        bottom[1].text(0.5, 0.5, "error =\nprediction - truth", ha="center", va="center", fontsize=7)
        for j, (label, f) in enumerate(labelled.items(), start=2):
            _panel(fig, top[j], f.prediction[i], label, "magma", (lo, hi))
            rel = np.linalg.norm(errors[label]) / max(np.linalg.norm(truth), 1e-30)
            _panel(fig, bottom[j], errors[label], f"rel. L2 {rel:.3g}", "RdBu_r", (-span, span))
        for ax in (bottom[0], bottom[1]):
            ax.set_axis_off()
    return fig


def _panel(fig: Figure, ax: Any, image: np.ndarray, title: str, cmap: str,
           limits: tuple[float, float] | None = None) -> None:
    shown = ax.imshow(image, origin="lower", cmap=cmap, vmin=limits and limits[0], vmax=limits and limits[1])
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.colorbar(shown, ax=ax, shrink=0.8)


@dataclass
class Gallery:
    """The gallery's figures (name -> Figure) and what could not be drawn (name -> why)."""

    figures: dict[str, Figure] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def gallery(runs: pd.DataFrame, jobs: list[Job], root: Path) -> Gallery:
    """One figure per downstream system and shift (and model family) of the ok runs ``runs``: the fine-tuned and
    scratch models at the smallest and largest N (the largest model, first seed); ``jobs``: the plan; ``root``: the
    results root."""
    out = Gallery()
    by_id = {job.id: job for job in jobs}
    downstream = runs[runs["stage"].isin(STAGES)]
    if downstream.empty:
        out.skipped["gallery"] = "no fine-tuned or scratch run finished"
        return out
    families = "model.arch" in downstream and downstream["model.arch"].notna().any()
    if families:
        downstream = downstream.assign(**{"model.arch": downstream["model.arch"].fillna(DEFAULT_ARCH)})
    keys = ["downstream.system", "downstream.shift", *(["model.arch"] if families else [])]
    for (system, shift, *arch), group in downstream.groupby(keys, sort=True):
        name = re.sub(r"[^A-Za-z0-9_.-]+", "", "_".join(["gallery", system, shift, *arch]).replace(",", "-"))
        picked = _picks(group)
        try:
            labelled = {label: predict_job(_job(by_id, job_id), root, SAMPLES) for label, job_id in picked.items()}
        except HarnessError as exc:
            out.skipped[name] = str(exc)
            continue
        which = "".join(f", {family(a).label}" for a in arch)
        out.figures[name] = field_figure(f"{system}, shift {shift}{which}: first {SAMPLES} test samples", labelled)
    return out


def _job(by_id: dict[str, Job], job_id: str) -> Job:
    if job_id not in by_id:
        raise HarnessError(f"run {job_id} is not in the sweep's plan.json (its inputs cannot be rebuilt)")
    return by_id[job_id]


def _picks(group: pd.DataFrame) -> dict[str, str]:
    """Column label -> job id: per stage, the largest model's first seed at the smallest and largest N."""
    picks = {}
    for stage in STAGES:
        rows = group[group["stage"] == stage]
        if rows.empty:
            continue
        rows = rows.sort_values(["n_params", "seed"], ascending=[False, True], kind="stable")
        rows = rows[rows["n_params"] == rows["n_params"].iloc[0]]
        for n in sorted({rows["downstream.n_train"].min(), rows["downstream.n_train"].max()}):
            picks[f"{STAGE_LABELS[stage]} N={int(n)}"] = rows[rows["downstream.n_train"] == n]["id"].iloc[0]
    return picks


def job_figure(jobs: list[Job], job_id: str, root: Path, samples: int = SAMPLES) -> Figure:
    """``harness show``: the first ``samples`` test samples of job ``job_id`` of the plan ``jobs``, with its
    best model's prediction and error. Raises HarnessError for an unknown job or an absent checkpoint."""
    job = next((j for j in jobs if j.id == job_id), None)
    if job is None:
        raise HarnessError(f"no job {job_id!r} in sweep {jobs[0].sweep if jobs else '?'}; "
                           "`harness status` and `harness submit --dry-run` list its jobs")
    part = job.part
    sizes = " ".join(f"{k} {v}" for k, v in sizes_of(job.config.model).items())
    title = (f"{job_id} ({STAGE_LABELS.get(job.stage, job.stage)}, {part.system} shift {part.shift}, "
             f"N={part.n_train}, {family(arch_of(job.config.model)).label} {sizes})")
    return field_figure(title, {"prediction": predict_job(job, root, samples)})
