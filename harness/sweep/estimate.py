"""What a sweep will cost before it runs: each job's work counted from its config (``job_work``), priced with a
calibration of the jobs' own train step (``harness.train.timing``).

A job's work (``Work``) is counted in passes of its model (``Kernel``: family, sizes, grid, input and output
channels, as the job's task builds it) and in samples through them:

    train steps        budget steps (``TrainConfig.budget``; an upper bound with ``patience``), each a forward,
                       a backward and an optimiser step over its batch (the last batch of an epoch may be short)
    pushforward        next_step with ``unroll`` u: k ~ U{0..u} extra forward passes without gradients per step
                       (``NextStep.train_view``), u / 2 on average, over the step's batch
    validation         every evaluation (``Budget.evaluations``) a forward pass over n_val in batches of
                       ``EVAL_BATCH``; one step for next_step (``NextStep.view``)
    test               steady and fixed_future: n_test in batches of ``EVAL_BATCH``; next_step (and its supervised
                       pretraining): the rollout, (nt - time_window) passes over n_test in batches of
                       ``ROLLOUT_BATCH`` (``harness.tasks.time_task.rollout``)
    zero-shot          validation and test only

Channels: the steady task's (7 -> 1, or its data files'); a time task's ``time_window`` frames and the data's
coefficient channels in, one frame out; a pretext pretraining's own channels where they change the cost (masked:
the window out, derivative: five derivatives out, coefficient on steady inputs: two channels in). Each family is
priced by its own ``flops_per_sample`` (``harness.models.Family``).

A pass costs a fixed time (``Rate.step_s`` for a train step, ``Rate.pass_s`` for a forward pass: Python, kernel
launches, the optimiser's per-tensor work; what dominates tiny models) plus its FLOPs at the rate measured for its
kernel (``Rate.train_s_per_flop``, ``Rate.forward_s_per_flop``; a train step is ``TRAIN_PASSES`` forwards' FLOPs),
a job a fixed time besides (``Rate.job_s``: its data from the cache, model, checkpoints and result files), and
each evaluation too (``Rate.eval_s``: progress file, best weights, hooks): ``seconds``. The calibration
(``harness.job.calibration.calibrate_device``) times the jobs' own
``train_step`` and forward pass per kernel at two batch sizes, and tiny real jobs (``run_job``) for the fixed
times, with the CPU threads one job gets; it is imported only when an estimate is asked (this module is
torch-free). Not priced: the PDE data generation (once per dataset and sweep root, cached) and process start-up.

Fused groups (``pack: fused``, one program training K jobs' models in lockstep; ``harness.job.fusable``'s groups
in plan order) are priced by ``group_seconds``: the per-step fixed time once, the FLOPs of every member summed (see
its docstring); a job alone is ``seconds``.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from harness.data.parts import model_channels
from harness.job import Job
from harness.job.fusable import fused_groups
from harness.job.process import apply_job_env
from harness.models import ARCHS, TRAIN_PASSES, Kernel, Shape
from harness.pde import model_coefs
from harness.store import Stage
from harness.tasks import window_channels
from harness.train import COEFFICIENT_IN_CHANNELS, DERIVATIVE_OUTPUTS, EVAL_BATCH, ROLLOUT_BATCH, Rate

STAGES = tuple(stage.value for stage in Stage)


@dataclass(frozen=True)
class Work:
    """A job's passes and the samples through them (module docstring); ``forward_*``: passes without gradients
    (pushforward, validation, test)."""

    kernel: Kernel
    steps: int = 0
    train_samples: int = 0
    evaluations: int = 0  # validations during training (``Budget.evaluations``)
    forward_passes: float = 0.0
    forward_samples: float = 0.0

    @property
    def train_flops(self) -> float:
        """FLOPs of the train steps alone (``TRAIN_PASSES`` forwards per sample): what ``analysis.compute`` counts."""
        return self.kernel.flops_per_sample() * TRAIN_PASSES * self.train_samples

    @property
    def flops(self) -> float:
        """Forward-pass FLOPs of it all, a train step counted as ``TRAIN_PASSES`` forwards."""
        return self.kernel.flops_per_sample() * (TRAIN_PASSES * self.train_samples + self.forward_samples)


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


def _supervised(job: Job) -> bool:
    """Whether the job learns its task itself (not a pretext task)."""
    pretrain = job.config.pretrain
    return job.stage != "pretrain" or pretrain is None or pretrain.strategy == "supervised"


def job_kernel(job: Job) -> Kernel:
    """The model a job runs, with the channels its task and strategy give it (module docstring)."""
    cfg, part = job.config, job.part
    strategy = "supervised" if _supervised(job) else cfg.pretrain.strategy
    if cfg.forecast is not None:
        window = cfg.forecast.time_window
        ins = window_channels(window, len(model_coefs(part.system)))
        outs = {"masked": window, "derivative": DERIVATIVE_OUTPUTS}.get(strategy, 1)
        return Kernel(job_shape(job), ins, outs)
    ins, outs = model_channels(job.part_name, part)
    if strategy == "coefficient":
        ins = COEFFICIENT_IN_CHANNELS
    return Kernel(job_shape(job), ins, DERIVATIVE_OUTPUTS if strategy == "derivative" else outs)


def _batches(n: int, batch: int) -> int:
    return math.ceil(n / batch) if n else 0


def job_work(job: Job, steps_run: int | None = None) -> Work:
    """A job's passes and samples, as in the module docstring; ``steps_run``: the steps the job actually ran (its
    summary's, ``analysis.compute``) instead of its budget's."""
    part, train, forecast = job.part, job.train, job.config.forecast
    rollout = forecast is not None and forecast.task == "next_step" and _supervised(job)
    if rollout:
        steps = forecast.nt - forecast.time_window
        test = (steps * _batches(part.n_test, ROLLOUT_BATCH), steps * part.n_test)
    else:
        test = (_batches(part.n_test, EVAL_BATCH), part.n_test)
    if train is None:  # zero-shot: evaluation only
        passes, samples = _batches(part.n_val, EVAL_BATCH) + test[0], part.n_val + test[1]
        return Work(job_kernel(job), forward_passes=passes, forward_samples=samples)
    n = part.n_train
    assert n is not None  # a training job's part has its training-set size
    budget = train.budget(n)
    steps = budget.total_steps if steps_run is None else steps_run
    epochs, rest = divmod(steps, budget.steps_per_epoch)
    samples = epochs * n + min(rest * budget.batch_size, n)
    unroll = (forecast.unroll or 0) / 2 if rollout else 0.0  # mean pushforward passes per step
    passes = unroll * steps + budget.evaluations * _batches(part.n_val, EVAL_BATCH) + test[0]
    forward = unroll * samples + budget.evaluations * part.n_val + test[1]
    return Work(job_kernel(job), steps, samples, budget.evaluations, passes, forward)


def seconds(work: Work, rate: Rate) -> float:
    """Seconds of a job's work at its kernel's rate: fixed time per pass plus FLOPs at the measured rate."""
    flops = work.kernel.flops_per_sample()
    return (rate.job_s + work.evaluations * rate.eval_s
            + work.steps * rate.step_s + TRAIN_PASSES * flops * work.train_samples * rate.train_s_per_flop
            + work.forward_passes * rate.pass_s + flops * work.forward_samples * rate.forward_s_per_flop)


def group_seconds(works: Sequence[Work], rates: Mapping[Kernel, Rate]) -> float:
    """Seconds of K jobs run as one fused program (``pack: fused``, ``harness.train.fused``): one loop over the
    longest member's steps whose fixed time per train step (the largest member's) is paid once, while every
    member's FLOPs are paid at its own kernel's rate. Each member keeps its own fixed times per job, per evaluation
    and per forward pass (it validates and tests alone; its pushforward passes, batched in the fused step, are
    counted as its own: an upper bound). A group of one costs ``seconds``."""
    shared = max((rates[w.kernel] for w in works), key=lambda r: r.step_s)
    fixed = max(w.steps for w in works) * shared.step_s
    return fixed + sum(seconds(w, rates[w.kernel]) - w.steps * rates[w.kernel].step_s for w in works)


def rate_of(rates: Mapping[Kernel, Rate], kernel: Kernel) -> Rate:
    """A kernel's rate, or (not calibrated) the median of each field over the rates there are."""
    if kernel in rates:
        return rates[kernel]
    return Rate(*(statistics.median(getattr(r, f) for r in rates.values()) for f in Rate.__dataclass_fields__))


def estimate(jobs: Iterable[Job], rates: Mapping[Kernel, Rate] | Rate | float,
             by: str = "stage") -> dict[str, StageCost]:
    """Cost per stage (in ``STAGES`` order, stages without jobs left out) and a final "total" row; ``by="family"``:
    per model family instead (``model.arch``, in ``ARCHS`` order). ``rates``: a mapping kernel -> rate as
    ``calibrate_jobs`` returns (a kernel it lacks: ``rate_of``), one ``Rate`` for every kernel, or seconds per
    FLOP of every pass (no fixed times)."""
    if isinstance(rates, int | float):
        rates = Rate(0.0, rates, 0.0, rates)
    rows: dict[str, dict[str, float]] = {}
    for group in fused_groups(list(jobs)):  # one job each, but for a sweep's `pack: fused`
        works = [job_work(job) for job in group]
        kernel_rates = {w.kernel: rates if isinstance(rates, Rate) else rate_of(rates, w.kernel) for w in works}
        name = group[0].stage if by == "stage" else works[0].kernel.shape.arch  # one stage and family a group
        row = rows.setdefault(name, {"jobs": 0, "train_samples": 0, "flops": 0.0, "seconds": 0.0})
        row["jobs"] += len(group)
        row["train_samples"] += sum(w.train_samples for w in works)
        row["flops"] += sum(w.flops for w in works)
        row["seconds"] += group_seconds(works, kernel_rates)
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


def calibrate_jobs(jobs: Sequence[Job], device: str | None = None) -> tuple[dict[Kernel, Rate], str, str]:
    """Rates for the kernels of ``jobs`` (``harness.job.calibration.calibrate_device``: on ``device``, default the
    GPU if any, else the CPU with a job's threads; each kernel timed at the largest batch its jobs train at), the
    unit of the hours they give and the device in words."""
    apply_job_env()  # before torch loads here, as in a job's process
    from harness.job.calibration import calibrate_device

    works = [job_work(j) for j in jobs]
    return calibrate_device({w.kernel: _largest_batch(works, w.kernel) for w in works}, device)


def describe_estimate(jobs: list[Job], *, device: str | None = None) -> str:
    """The printable estimate of a sweep: a calibration (``calibrate_jobs``), then one line per stage (jobs,
    train-samples, FLOPs, hours) and the total, and in a sweep over model families one line per family."""
    start = time.perf_counter()
    rates, unit, where = calibrate_jobs(jobs, device)
    lines = []
    for by in ("stage", "family") if len({job_shape(j).arch for j in jobs}) > 1 else ("stage",):
        table = estimate(jobs, rates, by)
        lines.append(f"{by:<10} {'jobs':>6} {'train-samples':>14} {'FLOPs':>10} {unit:>10}")
        for row in table.values() if by == "stage" else list(table.values())[:-1]:  # one total
            lines.append(f"{row.stage:<10} {row.jobs:6d} {row.train_samples:14.3g} {row.flops:10.3g} "
                         f"{row.hours:10.3g}")
    lines.append(
        f"(calibrated in {time.perf_counter() - start:.0f}s on {where}, {len(rates)} kernel(s); the sum of the jobs' "
        "run times, one job at a time per device with those threads (data generation not included); a job of "
        "several ranks (resources) spreads its hours over its devices; with patience a job may stop sooner, so "
        "training hours are an upper bound)"
    )
    return "\n".join(lines)


def _largest_batch(works: Sequence[Work], kernel: Kernel) -> int:
    """The largest mean batch the jobs of ``kernel`` train at (1 for evaluation-only kernels)."""
    return max((max(1, round(w.train_samples / w.steps)) for w in works if w.kernel == kernel and w.steps),
               default=1)
