"""Compute as an axis: each run's training FLOPs, its pretraining's (counted in full and amortised over the
fine-tunings that share it), and the compute model C = kappa P^gamma N^sigma of a group of runs.

A run's training FLOPs are f * TRAIN_PASSES * S, with f the forward FLOPs of one sample of its model on its grid
with the channels its task gives it (``harness.sweep.estimate.job_work``'s kernel, as ``harness expand --estimate``
counts them) and S the samples its steps saw (``job_work`` with the steps the run recorded, ``steps_run``; the
budget's where it recorded none): ``Work.train_flops``. Validation, test and pushforward passes are not counted.
A fine-tuned run's pretraining is its pretraining job's training FLOPs: ``pretrain_flops`` counts them in full,
``pretrain_amortised`` divides them by the fine-tuning jobs of the plan that start from that pretraining
(``pretrain_shared``).

The compute model of a group of runs is the power law C = kappa P^gamma N^sigma fitted by least squares to the log
of the runs' own FLOPs (P = ``n_params``, N = ``downstream.n_train``): with a budget in epochs sigma is 1, with a
budget in steps 0, with a floor of steps (``min_steps``) in between; ``max_error`` says how far the power law is
from the counted FLOPs of any run.
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.curves import N
from analysis.load import ReportError
from harness.errors import HarnessError
from harness.job import Job
from harness.sweep.estimate import job_work

COMPUTE = "compute"  # a run's own training FLOPs
PRETRAIN_FULL, PRETRAIN_AMORTISED = "pretrain_flops", "pretrain_amortised"
COUNTINGS = {  # how a fine-tuned run's compute counts its pretraining: name -> the column added to its own FLOPs
    "training": None,
    "pretraining amortised": PRETRAIN_AMORTISED,
    "pretraining in full": PRETRAIN_FULL,
}
MIN_SIGMA = 0.05  # below this, compute hardly grows with N: no compute-optimal allocation of N exists


def run_compute(runs: pd.DataFrame, jobs: list[Job]) -> pd.DataFrame:
    """One row per run of ``runs`` (ok summary rows of every stage): id, ``compute`` (its training FLOPs),
    ``pretrain_flops``, ``pretrain_shared`` and ``pretrain_amortised`` (0, 0 and 0 where it has no pretraining);
    nan where a run's job is not in ``jobs``, or its channels cannot be read (a data file moved or changed since
    it ran: the channels of a data-file job are its file's)."""
    by_id = {job.id: job for job in jobs}
    steps = dict(zip(runs["id"], runs["steps_run"], strict=True)) if "steps_run" in runs else {}

    @functools.cache  # a pretraining is counted once, however many fine-tunings share it
    def flops(job_id: str | None) -> float:
        job = by_id.get(job_id) if job_id else None
        if job is None:
            return float("nan")
        if job.stage == "zeroshot":  # trains nothing (whatever train settings its config carries)
            return 0.0
        recorded = steps.get(job_id)
        try:
            return job_work(job, None if recorded is None or pd.isna(recorded) else int(recorded)).train_flops
        except HarnessError:
            return float("nan")

    shared = Counter(job.depends_on for job in jobs if job.stage == "finetune" and job.depends_on)
    rows = []
    for job_id in runs["id"]:
        job = by_id.get(job_id)
        pre = job.depends_on if job is not None and job.stage in ("finetune", "zeroshot") else None
        full = flops(pre) if pre else 0.0
        share = shared.get(pre, 0) if pre else 0
        rows.append({"id": job_id, COMPUTE: flops(job_id), PRETRAIN_FULL: full, "pretrain_shared": share,
                     PRETRAIN_AMORTISED: full / share if share else full})  # fmt: skip
    return pd.DataFrame(rows, columns=["id", COMPUTE, PRETRAIN_FULL, "pretrain_shared", PRETRAIN_AMORTISED])


def counted(pts: pd.DataFrame, counting: str) -> np.ndarray:
    """The compute of each run of ``pts`` (with ``run_compute``'s columns) under ``counting`` (``COUNTINGS``)."""
    extra = COUNTINGS[counting]
    own = pts[COMPUTE].to_numpy(float)
    return own if extra is None else own + pts[extra].to_numpy(float)


@dataclass(frozen=True)
class ComputeModel:
    """C = kappa P^gamma N^sigma (sigma = 0 for a model of P alone); ``max_error``: the largest relative error of
    the model against the runs it was fitted to."""

    kappa: float
    gamma: float
    sigma: float
    max_error: float

    def __call__(self, p: np.ndarray | float, n: np.ndarray | float = 1.0) -> np.ndarray:
        return self.kappa * np.asarray(p, dtype=float) ** self.gamma * np.asarray(n, dtype=float) ** self.sigma

    def text(self) -> str:
        """The model in words, e.g. "C = 3.1e+03 P^1.02 N^0.98 (within 4 % of every run)"."""
        n = f" N^{self.sigma:.2f}" if self.sigma else ""
        return f"C = {self.kappa:.3g} P^{self.gamma:.2f}{n} (within {self.max_error:.0%} of every run)"


def fit_compute_model(p: np.ndarray, c: np.ndarray, n: np.ndarray | None = None) -> ComputeModel:
    """Least squares of log C on log P (and log N, when given) over the finite, positive points."""
    p, c = np.asarray(p, dtype=float), np.asarray(c, dtype=float)
    cols = [np.log(p)] + ([] if n is None else [np.log(np.asarray(n, dtype=float))])
    ok = np.isfinite(c) & (c > 0) & np.all([np.isfinite(x) for x in cols], axis=0)
    if any(len(np.unique(x[ok])) < 2 for x in cols):
        raise ReportError("the compute model needs runs with counted FLOPs at >= 2 model sizes (and N)")
    design = np.column_stack([np.ones(ok.sum()), *(x[ok] for x in cols)])
    q = np.linalg.lstsq(design, np.log(c[ok]), rcond=None)[0]
    error = float(np.max(np.abs(np.expm1(design @ q - np.log(c[ok])))))
    return ComputeModel(float(np.exp(q[0])), float(q[1]), float(q[2]) if n is not None else 0.0, error)


def group_models(rows: pd.DataFrame, counting: str) -> tuple[ComputeModel, ComputeModel | None]:
    """The compute model of a group's own training (P and N) and, where ``counting`` adds pretraining, the model
    of its pretraining in P (None for ``training``); raises ReportError when compute does not grow with N."""
    p, n = rows["n_params"].to_numpy(float), rows[N].to_numpy(float)
    own = fit_compute_model(p, rows[COMPUTE].to_numpy(float), n)
    if own.sigma < MIN_SIGMA:
        sigma = round(own.sigma, 2) + 0.0  # no "-0.00"
        raise ReportError(f"compute grows as N^{sigma:.2f} (a budget in steps): no compute-optimal N")
    extra = COUNTINGS[counting]
    return own, None if extra is None else fit_compute_model(p, rows[extra].to_numpy(float))
