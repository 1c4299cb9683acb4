"""What a sweep will cost before it runs: FLOPs per stage from each model family's own size function, hours from a
calibration.

The cost model (``estimate``, pure): a job of shape (family, sizes, resolution: ``harness.models.Shape``) costs
f = ``Shape.flops_per_sample`` per sample and forward pass, and

    training job   f * (3 * samples trained on    train steps: forward + backward (~2 forwards)
                        + n_val * evaluations     validation passes (``TrainConfig.budget``)
                        + n_test)                 the final test pass
    zero-shot job  f * (n_val + n_test)           evaluation only

Samples trained on are the step budget's (``steps`` or ``epochs``, at least ``min_steps``): with ``patience`` a
job may stop sooner, so training hours are an upper bound. Hours = FLOPs x seconds per FLOP, which
``harness.train.timing.calibrate`` measures with a few steps of the jobs' own train step per shape (imported only
when an estimate is asked: this module is torch-free).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from harness.job import Job
from harness.job.process import apply_job_env
from harness.models import ARCHS, TRAIN_PASSES, Shape
from harness.store import Stage

STAGES = tuple(stage.value for stage in Stage)


@dataclass(frozen=True)
class StageCost:
    """One row of the estimate: a stage or a model family (or "total") with its jobs, samples trained on, FLOPs and
    hours."""

    stage: str
    jobs: int
    train_samples: int  # samples trained on, over all steps (0 for zero-shot)
    flops: float
    hours: float


def job_shape(job: Job) -> Shape:
    """The family, sizes and resolution a job's model runs at."""
    return Shape.of(job.config.model, job.config.resolution)


def job_passes(job: Job, steps_run: int | None = None) -> tuple[int, int]:
    """(training samples, forward-pass equivalents over samples) of one job, as in the module docstring;
    ``steps_run``: the steps the job actually ran (its summary's, ``analysis.compute``) instead of its budget's."""
    part, train = job.part, job.train
    if train is None:  # zero-shot: evaluation only
        return 0, part.n_val + part.n_test
    n = part.n_train
    assert n is not None  # a training job's part has its training-set size
    budget = train.budget(n)
    run = budget.total_steps if steps_run is None else steps_run
    epochs, steps = divmod(run, budget.steps_per_epoch)
    samples = epochs * n + min(steps * budget.batch_size, n)
    return samples, TRAIN_PASSES * samples + part.n_val * budget.evaluations + part.n_test


def _rate(seconds_per_flop: float | Mapping[Shape, float], shape: Shape) -> float:
    """Seconds per FLOP for one shape: a single global ratio, or the shape's own (else the median of all)."""
    if isinstance(seconds_per_flop, Mapping):
        if shape in seconds_per_flop:
            return seconds_per_flop[shape]
        return statistics.median(seconds_per_flop.values())
    return seconds_per_flop


def estimate(
    jobs: Iterable[Job], seconds_per_flop: float | Mapping[Shape, float], by: str = "stage"
) -> dict[str, StageCost]:
    """Cost per stage (in ``STAGES`` order, stages without jobs left out) and a final "total" row; ``by="family"``:
    per model family instead (``model.arch``, in ``ARCHS`` order).

    ``seconds_per_flop`` is one ratio for every shape, or a mapping shape -> ratio as ``calibrate`` returns; a
    shape missing from the mapping gets the median of its ratios.
    """
    rows: dict[str, dict[str, float]] = {}
    for job in jobs:
        shape = job_shape(job)
        train_samples, passes = job_passes(job)
        flops = shape.flops_per_sample() * passes
        name = job.stage if by == "stage" else shape.arch
        row = rows.setdefault(name, {"jobs": 0, "train_samples": 0, "flops": 0.0, "seconds": 0.0})
        row["jobs"] += 1
        row["train_samples"] += train_samples
        row["flops"] += flops
        row["seconds"] += flops * _rate(seconds_per_flop, shape)
    table = {
        stage: StageCost(stage, int(r["jobs"]), int(r["train_samples"]), r["flops"], r["seconds"] / 3600)
        for stage in (STAGES if by == "stage" else ARCHS)
        if (r := rows.get(stage))
    }
    table["total"] = StageCost(
        "total",
        sum(c.jobs for c in table.values()),
        sum(c.train_samples for c in table.values()),
        sum(c.flops for c in table.values()),
        sum(c.hours for c in table.values()),
    )
    return table


def describe_estimate(jobs: list[Job], *, device: str | None = None) -> str:
    """The printable estimate of a sweep: a calibration on ``device`` (default: the GPU if any, else the CPU)
    with the jobs' own train step and process settings, then one line per stage (jobs, train-samples, FLOPs,
    hours) and the total, and in a sweep over model families one line per family."""
    apply_job_env()  # before torch loads here, as in a job's process
    from harness.train import timing

    shapes = {job_shape(j) for j in jobs}
    start = time.perf_counter()
    rates, unit, where = timing.calibrate_device(shapes, device)
    lines = []
    for by in ("stage", "family") if len({shape.arch for shape in shapes}) > 1 else ("stage",):
        table = estimate(jobs, rates, by)
        lines.append(f"{by:<10} {'jobs':>6} {'train-samples':>14} {'FLOPs':>10} {unit:>10}")
        for row in table.values() if by == "stage" else list(table.values())[:-1]:  # one total
            lines.append(f"{row.stage:<10} {row.jobs:6d} {row.train_samples:14.3g} {row.flops:10.3g} "
                         f"{row.hours:10.3g}")
    lines.append(
        f"(calibrated in {time.perf_counter() - start:.0f}s on {where}, {len(shapes)} shape(s); one job at a time "
        "per device; a job of several ranks (resources) spreads its hours over its devices; with patience a job "
        "may stop sooner, so training hours are an upper bound)"
    )
    return "\n".join(lines)
