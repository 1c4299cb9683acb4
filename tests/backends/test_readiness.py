"""One readiness rule for every backend: a job runs once its pretraining is ok, waits while it is queued, running
or sent, and is blocked otherwise; a pretraining that fails blocks its dependents on the local and inline backends
(the Slurm backend's test is in ``tests/e2e/test_slurm.py``, on the real cluster)."""

from __future__ import annotations

from pathlib import Path

import pytest

import harness
from harness.backends.select import Readiness, readiness, select
from harness.job import Job, JobConfig, Model
from harness.store import State
from harness.store.folders import read_summary, run_dir
from tests.helpers import failing_pretraining


def _job(jid: str, dep: str | None = None) -> Job:
    return Job(jid, "finetune" if dep else "pretrain", "s", JobConfig(16, 0, Model()), depends_on=dep)


@pytest.mark.parametrize(("state", "sending", "ready"), [
    (State.OK, (), Readiness.READY),
    (State.PENDING, (), Readiness.WAITING),
    (State.RUNNING, (), Readiness.WAITING),
    (State.MISSING, ("pt",), Readiness.WAITING),  # sent in the same submit
    (State.FAILED, ("pt",), Readiness.WAITING),  # resent in the same submit
    *((state, (), Readiness.BLOCKED) for state in (State.FAILED, State.DIVERGED, State.BLOCKED, State.CANCELLED,
                                                   State.TIMEOUT, State.PREEMPTED, State.PRUNED, State.MISSING)),
])
def test_a_job_waits_for_its_pretraining_and_is_blocked_by_one_that_cannot_end_ok(state, sending, ready) -> None:
    assert readiness(_job("ft", "pt"), {"pt": state}, sending) is ready
    assert readiness(_job("pt"), {}, ()) is Readiness.READY  # no pretraining: nothing to wait for
    assert readiness(_job("ft", "pt"), {}, absent=State.OK) is Readiness.READY  # a pretraining not in the view


def test_a_submit_sends_a_job_with_its_failed_pretraining_and_blocks_one_whose_pretraining_stays_failed() -> None:
    plan = [_job("pt"), _job("ft", "pt")]
    both = select(plan, {"pt": State.FAILED})
    assert [j.id for j in both.todo] == ["pt", "ft"] and not both.blocked
    only = select(plan, {"pt": State.FAILED}, only="finetune")
    assert not only.todo and [(j.id, dep) for j, dep in only.blocked] == [("ft", State.FAILED)]


@pytest.mark.parametrize("backend", ["local", "inline"])
def test_a_failed_pretraining_blocks_its_dependents(tmp_path: Path, backend: str) -> None:
    plan = failing_pretraining(tmp_path)
    run = harness.submit(plan, backend=backend, workers=1, echo=lambda line: None)
    by_stage = {job.stage: job for job in plan.jobs}
    pretrain = by_stage["pretrain"]
    assert run.states == {pretrain.id: State.FAILED, by_stage["finetune"].id: State.BLOCKED,
                          by_stage["zeroshot"].id: State.BLOCKED, by_stage["scratch"].id: State.OK}
    assert "pretrain.h5" in read_summary(run_dir(plan.folder, pretrain.id))["error"]
    for stage in ("finetune", "zeroshot"):
        summary = read_summary(run_dir(plan.folder, by_stage[stage].id))
        assert summary["error"] == f"pretraining job {pretrain.id} is failed; fix it and run `harness submit` again"
        assert not (run_dir(plan.folder, by_stage[stage].id) / "epochs.parquet").exists()  # it never ran
    assert run.bad.startswith("not ok: 1 failed") and "2 blocked" in run.bad
    assert harness.status(plan).states == run.states
