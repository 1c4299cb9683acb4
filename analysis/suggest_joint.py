"""The design of a joint law err = E + A P^-a + B N^-b (``analysis.transfer.fit_joint``) for ``harness suggest``'s
compute-optimal target (``analysis.suggest``): its runs over (P, N), its Fisher information and its candidate runs.

Read as ``analysis.suggest`` reads a curve: least squares in log space, log err = log(E + A P^-a + B N^-b) + e with
e ~ Normal(0, sigma^2), sigma the joint fit's log-space rmse corrected for its 5 parameters; the parameters
q = (log A, a, log B, b, E) then have covariance sigma^2 (J'J)^-1, J the law's Jacobian (``joint_model``) at the
fitted q over the runs' (P, N). Left out as there: the bounds (0 <= a, b <= 5, 0 <= E < min err) and the
seed-cluster bootstrap.

Candidates: one run at every (size, N) of the model sizes in the sweep and one size step beyond each end, times the
N of the group's grid and one step beyond each end, each in the sweep's own geometric spacing (for sizes: of the
family's first width key, ``model.width`` for an FNO, the smallest size stepped down and the largest up, its other
keys kept), with the first seed not yet run there. A size beyond the sweep's has P scaled from its end's by the
family's own parameter count (``harness.models.Family.count_params``) of the group's model: its channels and grid
as its jobs run it (``harness.sweep.estimate.job_kernel``: a time task's window frames in, a data file's fields).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np
import pandas as pd

from analysis.curves import ARCH, N, model_columns
from analysis.transfer import joint_model
from harness.job import Job
from harness.models import Kernel, SizeError, family
from harness.sweep.estimate import job_kernel

Label = tuple[str, ...]
Size = tuple[tuple[str, int], ...]  # a model's size keys as the sweep names them, e.g. (("model.width", 16), ...)


def grid_steps(grid: tuple[int, ...]) -> list[int]:
    """The values of ``grid`` (sorted) and the next value down and up in its geometric spacing (>= 1)."""
    ratio = (grid[-1] / grid[0]) ** (1 / (len(grid) - 1)) if len(grid) > 1 else 2.0
    return sorted({*grid, *(n for n in (round(grid[0] / ratio), round(grid[-1] * ratio)) if n >= 1)})


def free_seed(runs: list[int], seeds: list[int]) -> int:
    """The first of ``seeds`` (sorted) not in ``runs`` (the seeds run at one point), else one above the largest."""
    return next((s for s in seeds if s not in runs), seeds[-1] + 1)


@dataclass(frozen=True)
class JointDesign:
    """A joint law's fitted q = (log A, a, log B, b, E), its log-space noise scale, its runs as (N, seed, size), the
    N grid, the P of every candidate size and the ids of its runs."""

    label: Label
    params: np.ndarray
    sigma: float
    runs: tuple[tuple[int, int, Size], ...]
    grid: tuple[int, ...]
    sizes: Mapping[Size, float]
    ids: tuple[str, ...] = ()
    k: ClassVar[int] = 5
    step: ClassVar[float] = 1e-2  # relative step of the gradient: P* is found on a grid fine to ~1e-5 in log P

    def covariance(self) -> np.ndarray:
        """sigma^2 (J'J)^-1 of q at the fitted parameters over the runs' (P, N)."""
        x = np.log(np.array([(self.sizes[size], n) for n, _, size in self.runs], dtype=float))
        _, jac = joint_model(x)(self.params[None, :], True)
        return self.sigma**2 * np.linalg.pinv(jac[0].T @ jac[0])

    def with_run(self, n: int, seed: int, size: Size) -> JointDesign:
        """This law with one more run."""
        return replace(self, runs=(*self.runs, (n, seed, size)))

    def candidates(self) -> list[tuple[int, int, Size]]:
        """(N, seed, size) of one more run at every candidate size and N (the module docstring)."""
        seeds = sorted({s for _, s, _ in self.runs})
        out = []
        for size in sorted(self.sizes, key=self.sizes.get):
            for n in grid_steps(self.grid):
                out.append((n, free_seed([s for m, s, z in self.runs if m == n and z == size], seeds), size))
        return out


def run_sizes(rows: pd.DataFrame) -> list[Size]:
    """Each run's size: its model columns (but the family) that are set, as (column, value) pairs."""
    cols = [c for c in model_columns(rows) if c != ARCH]
    return [tuple((c, int(v)) for c, v in zip(cols, values, strict=True) if not pd.isna(v))
            for values in rows[cols].itertuples(index=False)]  # fmt: skip


def candidate_sizes(rows: pd.DataFrame, kernel: Kernel) -> dict[Size, float]:
    """P of every size of a group's runs (their median ``n_params``) and of one width step beyond each end, counted
    for the group's model (``kernel``: its family, grid and channels)."""
    counts: dict[Size, list[float]] = {}
    for size, p in zip(run_sizes(rows), rows["n_params"].to_numpy(float), strict=True):
        counts.setdefault(size, []).append(p)
    out = {size: float(np.median(p)) for size, p in counts.items()}
    rules = family(kernel.shape.arch)
    key = f"model.{rules.width_keys[0]}"
    widths = sorted({dict(size)[key] for size in out if key in dict(size)})
    if not widths:
        return out
    ratio = (widths[-1] / widths[0]) ** (1 / (len(widths) - 1)) if len(widths) > 1 else 2.0
    io = {"resolution": kernel.shape.resolution, "in_channels": kernel.in_channels, "out_channels": kernel.out_channels}
    ordered = sorted(out, key=out.get)
    for end, factor in ((ordered[0], 1 / ratio), (ordered[-1], ratio)):
        new = tuple((c, max(1, round(v * factor)) if c == key else v) for c, v in end)
        try:
            count = [rules.count_params({c.removeprefix("model."): v for c, v in s}, **io) for s in (new, end)]
        except (SizeError, TypeError):
            continue  # a size the family refuses, or keys it does not count by
        out.setdefault(new, out[end] * count[0] / count[1])
    return out


def joint_design(label: Label, rows: pd.DataFrame, q: np.ndarray, rmse: float, jobs: Sequence[Job]) -> JointDesign:
    """The design of a group's joint law fitted to ``rows`` (q in ``joint_model``'s order, its rmse), its model's
    channels those of its jobs in the plan (``jobs``)."""
    runs = tuple(zip(rows[N].astype(int).tolist(), rows["seed"].astype(int).tolist(), run_sizes(rows), strict=True))
    sigma = rmse * np.sqrt(len(runs) / max(len(runs) - JointDesign.k, 1))
    first = rows["id"].iloc[0]
    kernel = job_kernel(next(job for job in jobs if job.id == first))
    return JointDesign(label, np.asarray(q, dtype=float), float(sigma), runs, tuple(sorted({n for n, _, _ in runs})),
                       candidate_sizes(rows, kernel), tuple(rows["id"]))  # fmt: skip
