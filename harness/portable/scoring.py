"""``harness eval``: a finished job scored on another source or grid (``harness.sweep.evals``), its row added to its
run folder's eval.parquet (``harness.job.evaluate``). Every refusal comes before anything is written."""

from __future__ import annotations

from typing import Any

from harness.errors import HarnessError
from harness.job import Job
from harness.job.evaluate import record, score
from harness.job.run import data_cache, data_seed
from harness.job.trained import ended_ok, objective_of, trained
from harness.store.folders import Plan, run_dir
from harness.sweep.evals import EvalError, check_eval, parse_cli
from harness.tasks.make import make_task


def evaluate_job(plan: Plan, job: Job, data: str | None, *, resolution: int | None = None,
                 fmt: str | None = None) -> dict[str, Any]:
    """Score ``job`` of ``plan`` on ``data`` (``SYSTEM``, ``SYSTEM:SHIFT`` or a data file of format ``fmt``) at
    ``resolution`` (default: the job's own); returns the row it recorded. Refused (HarnessError, one line): a job
    that did not end ok, a pretext pretraining, a source the job cannot be scored on."""
    root = plan.folder.parent
    ended_ok(job, root, "harness eval")
    objective_of(job, make_task(job.config))  # a pretext pretraining predicts no solution
    try:
        source = check_eval(parse_cli(data, resolution, fmt), job, cache_dir=str(data_cache(root)))
    except EvalError as exc:
        flag = "--resolution" if exc.key == "resolution" else "--data"
        raise HarnessError(f"harness eval {job.id} {flag}: {exc}") from None
    model = trained(job, root)
    row = score(job, model.model, model.stats, source, seed=data_seed(job), cache=data_cache(root))
    record(run_dir(plan.folder, job.id), [row])
    return row
