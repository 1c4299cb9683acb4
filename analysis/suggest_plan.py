"""``harness suggest`` on a sweep folder: the target's curves from the sweep's ok runs, each candidate run priced as the
job its sweep point expands to, the greedy pick (``analysis.suggest``) and the ``include:`` block written.

A candidate's cost is the cost estimate's (``harness.sweep.estimate.estimate``) of the jobs its sweep point expands
to (a tuned sweep's: every trial of the study), at the seconds per FLOP the sweep's own runs took on their device:
their ``wall_s`` over their estimated FLOPs, the median per model shape (of all, for a shape the sweep has not run);
a fused job's ``wall_s`` is its share of its group's time (``harness.job.run.run_group``), so a packed sweep prices
its runs at what they cost it.
That is device-hours, as the budget is, without a calibration run; and one number per shape, which the estimate
takes whatever form its own calibration has. Its sweep point is that of a run of its curve in the plan (the axes as
the sweep file wrote them) with ``downstream.n_train`` and ``seed`` set.

A candidate ``harness expand`` would refuse (``harness.sweep.checks``: memory, a size its family refuses, an N
above the rows a data file holds...) is dropped before the pick, priced at infinity, and the printed table names
each with expand's reason; the block's points are then expanded with the sweep's own (``expand``, in memory, as
``harness expand`` would, checks across jobs such as a fused group's memory included) before it is written.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.curves import fit_curves
from analysis.load import ReportError, load_runs
from analysis.suggest import Pick, Resolved, include_block, pick, resolve, width
from analysis.suggest_joint import Size
from harness.errors import SweepError
from harness.job import Job
from harness.models import Shape
from harness.pde.cache import data_cache
from harness.store.atomic import write_text_atomic
from harness.sweep.estimate import estimate, job_shape
from harness.sweep.expand import expand, job_id, stage_configs
from harness.sweep.expand import resolve as resolve_point
from harness.sweep.spec import Sweep, parse_sweep
from harness.sweep.tune import for_stage, trial_configs

TRAINED = ("finetune", "scratch")


@dataclass(frozen=True)
class Suggestion:
    """What ``harness suggest`` found: the target, what its interval is of, the interval's expected width now, the
    picks with their sweep points, and the block file (holding the sweep's own ``include:`` entries first where it
    has some); ``dropped``: each candidate expand refuses, as its point's line, with expand's reason."""

    target: str
    scale: str
    width: float
    budget: float
    picks: list[Pick]
    points: list[dict[str, Any]]
    block: Path
    replaces_include: bool
    dropped: dict[str, str] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """The printed table: one line per pick (its point, cost, expected shrinkage), then where the block is."""
        after = self.picks[-1].width if self.picks else self.width
        spent = sum(p.hours for p in self.picks)
        out = [f"{self.target}: expected width of the interval of {self.scale} {self.width:.3g} now, {after:.3g} "
               f"after {len(self.picks)} run(s) ({1 - after / self.width:.0%} narrower) for {spent:.3g} of "
               f"{self.budget:.3g} device-hours",
               f"{'hours':>10} {'shrinkage':>10}  point"]  # fmt: skip
        for p, point in zip(self.picks, self.points, strict=True):
            out.append(f"{p.hours:10.3g} {p.shrinkage:10.1%}  {_line(point)}")
        if self.dropped:
            out.append(f"dropped {len(self.dropped)} candidate run(s) that `harness expand` refuses:")
            out += [f"  {point}: {reason}" for point, reason in self.dropped.items()]
        how = "replace the sweep file's include: with it" if self.replaces_include else "append it to the sweep file"
        out.append(f"include block: {self.block} ({how}, then `harness expand` the file, `harness submit` and "
                   "`harness report`)")
        return out


def suggest_runs(folder: Path, target: str, budget: float, k: int | None = None) -> Suggestion:
    """Pick the runs that shrink ``target``'s interval most per device-hour within ``budget`` (at most ``k``) and
    write their ``include:`` block to ``folder``/suggest/<target>.yaml; ReportError (one line) on a bad target, a
    curve too small to fit, or a budget that is not positive. Nothing is written when no run fits the budget."""
    if not (budget > 0 and math.isfinite(budget)):
        raise ReportError(f"--budget {budget}: must be a positive number of device-hours; e.g. --budget 2")
    loaded = load_runs(Path(folder))
    if loaded.plan is None:
        raise ReportError(f"{folder}: no plan; run `harness expand SWEEP.yaml` first")
    runs = loaded.ok
    fits = fit_curves(runs, n_boot=0)
    resolved = resolve(target, runs, fits, loaded.plan.jobs)
    sweep = parse_sweep(loaded.plan.spec, {}, loaded.plan.source)
    jobs = {job.id: job for job in loaded.plan.jobs}
    rates = measured_rates(list(jobs.values()), runs)
    templates = _templates(resolved, jobs)
    prices: dict[tuple, float] = {}
    dropped: dict[str, str] = {}
    cache_dir = str(data_cache(Path(folder).parent))

    def cost(curve: int, n: int, seed: int, size: Size = ()) -> float:
        if (curve, n, seed, size) not in prices:
            point = _point(templates[curve], n, seed, size)
            if (reason := refusal(sweep, point, cache_dir)) is not None:
                dropped[_line(point)] = reason
                prices[curve, n, seed, size] = math.inf
                return math.inf
            expanded = point_jobs(sweep, point)
            rate = rates.get(job_shape(expanded[0]), statistics.median(rates.values()))
            prices[curve, n, seed, size] = estimate(expanded, rate)["total"].hours
        return prices[curve, n, seed, size]

    picks = pick(resolved, cost, budget, k)
    if not picks:
        cheapest = min(cost(i, *run) for i, d in enumerate(resolved.designs) for run in d.candidates())
        if math.isinf(cheapest):
            raise ReportError(f"--target {target}: `harness expand` refuses every candidate run, e.g. "
                              f"{next(iter(dropped.values()))}")
        raise ReportError(f"--budget {budget:g}: no candidate run fits it (the cheapest costs {cheapest:.3g} "
                          "device-hours); raise --budget")
    points = [_point(templates[p.curve], p.n, p.seed, p.size) for p in picks]
    existing = list(sweep.raw.get("include") or [])
    try:  # the sweep with the block, as `harness expand` of the file with it appended checks it
        expand(parse_sweep({**sweep.raw, "include": [*existing, *points]}, {}, sweep.path), force=True,
               cache_dir=cache_dir)
    except SweepError as exc:
        raise ReportError(f"--target {target}: the suggested runs do not expand with the sweep: {exc}") from None
    block = Path(folder) / "suggest" / f"{target}.yaml"
    block.parent.mkdir(exist_ok=True)
    write_text_atomic(block, include_block(points, existing))
    now = width(resolved.value, resolved.designs)
    return Suggestion(target, resolved.scale, now, budget, picks, points, block, bool(existing), dropped)


def measured_rates(jobs: list[Job], runs: pd.DataFrame) -> dict[Shape, float]:
    """Seconds per FLOP per model shape: the median over the sweep's trained runs of wall_s / estimated FLOPs."""
    seconds_of = pd.to_numeric(runs["wall_s"], errors="coerce") if "wall_s" in runs else runs["id"].map(lambda _: 0.0)
    wall = dict(zip(runs["id"], seconds_of, strict=True))
    ratios: dict[Shape, list[float]] = defaultdict(list)
    for job in jobs:
        seconds = wall.get(job.id, math.nan)
        if job.stage in TRAINED and seconds > 0:
            flops = estimate([job], 1.0)["total"].flops
            if flops > 0:
                ratios[job_shape(job)].append(seconds / flops)
    if not ratios:
        raise ReportError("no trained run of the sweep has a wall time to price candidates with; run the sweep first")
    return {shape: statistics.median(r) for shape, r in ratios.items()}


def point_jobs(sweep: Sweep, point: Mapping[str, Any]) -> list[Job]:
    """The downstream jobs a sweep point expands to, as ``expand`` makes them: one, or a tuned sweep's trials (its
    pretraining, shared with the sweep's runs, is already run)."""
    stage, config = stage_configs(resolve_point(sweep, dict(point)))[-1]
    tuned = sweep.tune is not None and stage in sweep.tune["stages"]
    configs = trial_configs(config, job_id(stage, config), for_stage(sweep.tune, stage)) if tuned else [config]
    return [Job(job_id(stage, c), stage, sweep.name, c, depends_on=c.pretrain_id, point=dict(point)) for c in configs]


def refusal(sweep: Sweep, point: Mapping[str, Any], cache_dir: str | None = None) -> str | None:
    """Why ``harness expand`` refuses ``point`` of ``sweep`` (the checks of one point: ``expand`` of the sweep with
    that point alone, in memory), or None where it expands."""
    alone = replace(sweep, exclude=[{}], include=[dict(point)], lines={})  # `{}` excludes every matrix point
    try:
        expand(alone, cache_dir=cache_dir)
    except SweepError as exc:
        return str(exc).split(": ", 1)[1]  # less the sweep file's name, which the line names before it
    return None


def _line(point: Mapping[str, Any]) -> str:
    """A sweep point as the block writes it, one flow mapping."""
    return include_block([point]).splitlines()[1][4:]


def _templates(resolved: Resolved, jobs: Mapping[str, Job]) -> list[dict[str, Any]]:
    """Per design of the target: the sweep point of one of its runs in the plan."""
    return [next(dict(jobs[i].point) for i in d.ids if i in jobs) for d in resolved.designs]


def _point(template: Mapping[str, Any], n: int, seed: int, size: Size = ()) -> dict[str, Any]:
    """``template`` at N ``n`` and ``seed`` and, for a joint law's run, model ``size`` (its size keys in place of a
    parameter target; the other axes as the sweep wrote them)."""
    model = {c: v for c, v in template.items() if not (size and c == "model.params")}
    return {**model, "downstream.n_train": int(n), "seed": int(seed), **{c: int(v) for c, v in size}}
