"""Ids and plans stay byte for byte what they were: every committed sweep file expands to its pinned job ids and
plan.json digest (``golden_ids.json``, first written by the dict-based expand before jobs were typed), and every
committed reference plan reads back through the typed job (``harness.job.Job``) and is written out byte for byte.

Ids change only on purpose (the honest-numbers issue changes those of seeded sweeps, for instance): then rewrite the
pins with ``python -m tests.sweep.test_golden`` and say why in the commit.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path

import pytest

from harness.store.folders import read_plan, save_plan, write_plan
from harness.sweep.expand import expand
from harness.sweep.spec import load_sweep

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).with_name("golden_ids.json")
PINNED = json.loads(GOLDEN.read_text())
REFERENCE_PLANS = sorted((ROOT / "results" / "reference").glob("*/plan.json"))


def pins(path: str) -> dict[str, object]:
    """The ids of the sweep file at ``path`` (relative to the repository) and the sha256 of the plan.json it writes."""
    sweep = load_sweep(ROOT / path)
    jobs = expand(sweep)
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_plan(Path(tmp), sweep.name, sweep.raw, path, jobs)
        digest = hashlib.sha256((folder / "plan.json").read_bytes()).hexdigest()
    return {"plan_sha256": digest, "ids": [job.id for job in jobs]}


def test_every_committed_sweep_file_is_pinned() -> None:
    files = {str(p.relative_to(ROOT)) for p in (ROOT / "sweeps").glob("*.yaml")}
    assert files <= set(PINNED), f"unpinned: {sorted(files - set(PINNED))}; run python -m tests.sweep.test_golden"


@pytest.mark.parametrize("path", sorted(PINNED))
def test_a_committed_sweep_keeps_its_job_ids_and_plan(path: str) -> None:
    got, want = pins(path), PINNED[path]
    assert got["ids"] == want["ids"]
    assert got["plan_sha256"] == want["plan_sha256"]


@pytest.mark.parametrize("plan", REFERENCE_PLANS, ids=lambda p: p.parent.name)
def test_a_reference_plan_reads_back_through_the_typed_job_byte_for_byte(plan: Path, tmp_path: Path) -> None:
    read = read_plan(plan.parent)
    assert read is not None and read.jobs
    if plan.read_bytes().startswith(b'{\n "jobs"'):  # written by the first harness: one indented, key-sorted dump
        whole = {"jobs": [job.to_dict() for job in read.jobs], "source": read.source, "spec": read.spec,
                 "sweep": read.sweep}
        assert json.dumps(whole, indent=1, sort_keys=True).encode() == plan.read_bytes()
    else:  # today's writer: one job per line
        save_plan(tmp_path, read.sweep, read.spec, read.source, read.jobs)
        assert (tmp_path / "plan.json").read_bytes() == plan.read_bytes()


def test_an_older_plan_reads_with_defaults_for_the_keys_it_lacks_and_writes_them_not() -> None:
    # the strategies study was planned before train.steps, train.loss and downstream.n_val_fraction existed
    (job,) = [j for j in read_plan(ROOT / "results" / "reference" / "strategies").jobs if j.stage == "finetune"][:1]
    assert {"train.steps", "train.loss", "downstream.n_val_fraction"} <= job.unwritten
    assert job.config.train.steps == 0 and job.config.train.loss == "sse" and job.config.downstream.n_val_fraction == 0
    written = job.to_dict()["config"]
    assert "steps" not in written["train"] and "n_val_fraction" not in written["downstream"]


if __name__ == "__main__":  # rewrite the pins from the current expand (only when ids change on purpose)
    GOLDEN.write_text(json.dumps({path: pins(path) for path in sorted(PINNED)}, indent=0) + "\n")
    sys.exit(0)
