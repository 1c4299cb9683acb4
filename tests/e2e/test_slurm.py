"""The Slurm backend: pure planning, parsing and merging (always run), then the real single-node cluster.

The cluster tests (marker `slurm`) need `.ci/slurm-up.sh` to have run; they are skipped with the reason
otherwise. They submit real tiny sweeps (16x16 grids, width 4-6, a few epochs) through submitit job arrays.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from harness import api
from harness.backends import slurm_state
from harness.backends.select import select
from harness.backends.slurm import SlurmResources, cancel, dependency, plan_arrays, submit
from harness.backends.slurm_state import merge_states, parse_sacct, query, read_submitted
from harness.errors import BackendError
from harness.job import Job, JobConfig, Model
from harness.job.hooks import HOLD_ENV
from harness.job.run import run_job
from harness.store import State
from harness.store.folders import read_summary, run_dir
from tests.helpers import cli, failing_pretraining, harness, write_sweep
from tests.slurm_util import ckpt_rows, expand, job_pid, release_requeued, sacct, wait_for, wait_settled


def to_submit(jobs: list[Job], folder: Path) -> list[Job]:
    """What `harness submit --backend slurm` would send now: the common selection over Slurm's merged view."""
    return select(jobs, query(folder, jobs)).todo


def job(jid: str, stage: str = "finetune", dep: str | None = None) -> Job:
    return Job(jid, stage, "s", JobConfig(16, 0, Model()), depends_on=dep)


# ---------------------------------------------------------------------------------------------- no cluster


def test_resources_from_dict_defaults_and_overrides() -> None:
    res = SlurmResources.from_dict({"partition": "gpu", "time_min": 30, "qos": None, "setup": ["module load x"]})
    assert (res.partition, res.time_min, res.qos, res.setup, res.pack) == ("gpu", 30, None, ["module load x"], 1)
    assert SlurmResources.from_dict({"gpus_per_node": 2, "jobs_per_gpu": 3}).pack == 6
    assert SlurmResources.from_dict({"gpus_per_node": 0, "jobs_per_gpu": 3}).pack == 3


def test_resources_reject_unknown_keys_listing_the_valid_ones() -> None:
    with pytest.raises(BackendError, match=re.escape("unknown slurm setting(s) gpus, partiton; valid settings: "
                                                     "partition (default None), account (default None)")):
        SlurmResources.from_dict({"partiton": "gpu", "gpus": 1})


@pytest.mark.parametrize(("key", "value", "message"), [
    ("time_min", 0, "slurm.time_min must be an integer >= 1, but got 0"),
    ("jobs_per_gpu", True, "slurm.jobs_per_gpu must be an integer >= 1, but got True"),
    ("gpus_per_node", -1, "slurm.gpus_per_node must be an integer >= 0, but got -1"),
    ("mem_gb", "lots", "slurm.mem_gb must be a finite number > 0, but got 'lots'"),
    ("mem_gb", float("inf"), "slurm.mem_gb must be a finite number > 0, but got inf"),
    ("setup", "module load x", "slurm.setup must be a list of shell lines, but got 'module load x'"),
])
def test_resources_reject_bad_values(key: str, value: Any, message: str) -> None:
    with pytest.raises(BackendError, match=re.escape(message)):
        SlurmResources.from_dict({key: value})


def test_plan_arrays_chunks_stages_and_waits_only_for_pending_pretraining() -> None:
    pts = [job(f"pt-{i}", "pretrain") for i in range(3)]
    fts = [job(f"ft-{i}{k}", "finetune", f"pt-{i}") for i in range(3) for k in range(2)]
    scs = [job("sc-0", "scratch"), job("sc-1", "scratch")]
    done = job("ft-ok", "finetune", "pt-old")  # its pretraining is ok on disk: no dependency
    chunks = plan_arrays([*pts, *fts, *scs, done], 4, parallelism=10, waiting={"pt-0", "pt-1", "pt-2"})
    got = [(c.stage, [[j.id for j in t] for t in c.tasks], c.after, c.parallelism) for c in chunks]
    assert got == [
        ("pretrain", [["pt-0"], ["pt-1"], ["pt-2"]], (), 10),
        ("downstream", [["sc-0"], ["sc-1"], ["ft-ok"]], (), 3),
        ("downstream", [["ft-00"], ["ft-01"], ["ft-10"], ["ft-11"]], ("pt-0", "pt-1"), 3),
        ("downstream", [["ft-20"], ["ft-21"]], ("pt-2",), 3),
    ]
    assert all(len(c.tasks) <= 4 for c in chunks)


def test_plan_arrays_packs_jobs_per_task() -> None:
    jobs = [job(f"sc-{i}", "scratch") for i in range(5)]
    chunks = plan_arrays(jobs, 2, pack=2, parallelism=1)
    assert [[len(t) for t in c.tasks] for c in chunks] == [[2, 2], [1]]
    assert [c.parallelism for c in chunks] == [1, 1]  # never below one per array


def test_dependency_names_a_whole_array_where_it_can() -> None:
    arrays = {"10": ["10_0", "10_1"], "11": ["11_0", "11_1"], "12": ["12"]}
    assert dependency(["10_0", "10_1", "11_1", "12"], arrays) == "afterok:10:11_1:12"


SACCT = """\
10_0|COMPLETED|2026-01-01T10:00:00|2026-01-01T10:00:05
10_1|CANCELLED by 0|2026-01-01T10:00:00|2026-01-01T10:00:02
10_[2-4%2]|PENDING|Unknown|Unknown
11|RUNNING|2026-01-01T10:00:01|Unknown
12_0|PREEMPTED|2026-01-01T10:00:00|2026-01-01T10:00:03
12_1|REQUEUED|2026-01-01T10:00:00|2026-01-01T10:00:03
13_[1,3]|TIMEOUT|2026-01-01T10:00:00|2026-01-01T10:05:00
14|OUT_OF_MEMORY|2026-01-01T10:00:00|2026-01-01T10:00:03
"""


def test_parse_sacct_unfolds_pending_arrays_and_maps_states() -> None:
    records = parse_sacct(SACCT)
    assert {k: r.state for k, r in records.items()} == {
        "10_0": None, "10_1": "cancelled", "10_2": "pending", "10_3": "pending", "10_4": "pending",
        "11": "running", "12_0": "preempted", "12_1": "pending", "13_1": "timeout", "13_3": "timeout",
        "14": "failed"}
    assert records["10_0"].end == "2026-01-01T10:00:05"


def test_merge_states_disk_ok_wins_and_requeued_is_never_done() -> None:
    jobs = [job("pt-a", "pretrain"), job("pt-b", "pretrain"), job("ft-a", dep="pt-a"), job("ft-b", dep="pt-b"),
            job("sc-1", "scratch"), job("sc-2", "scratch"), job("sc-3", "scratch"), job("sc-4", "scratch")]
    submitted = {"pt-a": "10_0", "pt-b": "10_1", "ft-a": "10_2", "ft-b": "10_3", "sc-1": "12_1",
                 "sc-2": "14", "sc-3": "10_0", "sc-4": "13_1"}
    disk = {j.id: State.MISSING for j in jobs} | {"pt-a": State.OK, "sc-2": State.OK, "sc-3": State.DIVERGED}
    states = merge_states(jobs, submitted, parse_sacct(SACCT), disk)
    assert states == {"pt-a": "ok", "pt-b": "cancelled", "ft-a": "pending", "ft-b": "blocked",
                      "sc-1": "pending", "sc-2": "ok", "sc-3": "diverged", "sc-4": "timeout"}
    # COMPLETED with no summary on disk means the job broke: failed, to be sent again
    assert merge_states([job("x")], {"x": "10_0"}, parse_sacct(SACCT), {"x": State.MISSING}) == {"x": "failed"}
    # a trial its pruner stopped exits 0 too: it stays pruned, whatever Slurm says later
    for slurm_id in ("10_0", "10_1", "12_0"):  # completed, cancelled, preempted
        assert merge_states([job("x")], {"x": slurm_id}, parse_sacct(SACCT), {"x": State.PRUNED}) == {"x": "pruned"}


def test_select_resends_broken_jobs_and_keeps_blocked_ones_out() -> None:
    jobs = [job("pt-ok", "pretrain"), job("pt-bad", "pretrain"), job("pt-div", "pretrain"),
            job("pt-run", "pretrain"), job("ft-1", dep="pt-ok"), job("ft-2", dep="pt-bad"),
            job("ft-3", dep="pt-div"), job("ft-4", dep="pt-run"), job("ft-5", dep="pt-ok"), job("sc-1", "scratch")]
    words = {"pt-ok": "ok", "pt-bad": "failed", "pt-div": "diverged", "pt-run": "running", "ft-1": "cancelled",
             "ft-2": "blocked", "ft-3": "missing", "ft-4": "missing", "ft-5": "pending", "sc-1": "timeout"}
    chosen = select(jobs, {k: State(v) for k, v in words.items()})
    assert [j.id for j in chosen.todo] == ["pt-bad", "ft-1", "ft-2", "ft-4", "sc-1"]
    assert [(j.id, dep) for j, dep in chosen.blocked] == [("ft-3", "diverged")]
    retried = select(jobs, {k: State(v) for k, v in words.items()}, retry_failed=True)
    assert [j.id for j in retried.todo] == ["pt-bad", "pt-div", "ft-1", "ft-2", "ft-3", "ft-4", "sc-1"]


def test_one_sacct_call_per_refresh_and_a_task_cancelled_while_pending_reads_cancelled(
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []

    def fake(cmd: list[str], fix: str) -> str:
        calls.append(cmd)
        return SACCT if cmd[0] == "sacct" else "15_0|RUNNING\n"

    monkeypatch.setattr(slurm_state, "run_cmd", fake)
    records = slurm_state.slurm_records({"10_0", "10_7", "11_2", "15_0", "99_1"})
    assert [c[0] for c in calls] == ["sacct", "squeue"] and calls[0][-1] == "10,11,15,99"
    assert {k: records[k].state for k in ("10_0", "10_7", "11_2", "15_0")} == {
        "10_0": None, "10_7": "cancelled", "11_2": "running", "15_0": "running"}
    assert "99_1" not in records  # an array accounting never saw: unknown, the run folder decides


def test_no_sbatch_on_path_is_one_clear_error_and_writes_nothing(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    root = tmp_path / "results"
    with pytest.raises(BackendError, match=re.escape("`sbatch` is not on PATH: the slurm backend needs the "
                                                     "Slurm client tools")):
        submit([job("sc-1", "scratch")], root, SlurmResources())
    assert not root.exists()


# --------------------------------------------------------------------------------------------- the cluster

TINY: dict[str, Any] = {
    "name": "slurmtiny",
    "base": {
        "resolution": 16,
        "model": {"width": 4, "modes": 4},
        "pretrain": {"n_train": 16, "n_val": 8, "n_test": 8, "train": {"epochs": 3, "batch_size": 8}},
        "downstream": {"n_train": 8, "n_val": 8, "n_test": 8},
        "train": {"epochs": 2, "batch_size": 8},
    },
    "matrix": {"model.width": [4, 6], "init": ["pretrained", "scratch", "zeroshot"]},
}
RES = {"cpus_per_task": 1, "time_min": 10, "gpus_per_node": 1}


def sweep(name: str, **changes: Any) -> dict[str, Any]:
    """TINY under another name, with top-level sections replaced."""
    return {**json.loads(json.dumps(TINY)), "name": name, **changes}


def ok_ids(root: Path, name: str) -> set[str]:
    return {p.parent.name for p in (root / name / "runs").glob("*/summary.parquet")
            if read_summary(p.parent)["status"] == "ok"}


@pytest.mark.slurm
def test_sweep_on_slurm_matches_local_and_resubmits_a_cancelled_job(slurm_cluster: str, tmp_path: Path) -> None:
    root = tmp_path / "results"
    folder, jobs = expand(write_sweep(tmp_path, TINY), root)
    res = SlurmResources.from_dict(RES)
    assert to_submit(jobs, folder) == jobs
    start = time.time()
    report = submit(jobs, root, res)
    assert time.time() - start < 20, "submit must not wait for the jobs"
    assert set(report.submitted) == {j.id for j in jobs} and len(report.arrays) >= 3  # chunked at 4
    assert read_submitted(folder) == report.submitted
    victim = next(j.id for j in jobs if j.stage == "finetune")
    subprocess.run(["scancel", report.submitted[victim]], check=True)

    states = wait_settled(folder)
    assert states == {j.id: "cancelled" if j.id == victim else "ok" for j in jobs}
    records = sacct(*set(report.submitted.values()))
    for j in jobs:
        if j.depends_on and j.id != victim:  # pretraining ended before its dependant started
            assert records[report.submitted[j.depends_on]].end <= records[report.submitted[j.id]].start

    again = to_submit(jobs, folder)
    assert [j.id for j in again] == [victim]
    assert set(submit(again, root, res).submitted) == {victim}
    assert set(wait_settled(folder).values()) == {"ok"}

    code = json.loads((folder / "slurm" / "code.json").read_text())
    assert (Path(code["snapshot"]) / "harness" / "backends" / "slurm.py").is_file()
    assert code["harness_version"] and Path(code["snapshot"]).parent == folder / "slurm" / "code"

    local = tmp_path / "local"
    for args in (["expand", str(tmp_path / "slurmtiny.yaml")], ["submit", "--workers", "2"]):
        proc = subprocess.run([sys.executable, "-m", "harness.cli", *args, "--root", str(local)],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    assert ok_ids(local, "slurmtiny") == ok_ids(root, "slurmtiny") == {j.id for j in jobs}


@pytest.mark.slurm
def test_a_failed_pretraining_blocks_its_dependents_on_slurm(slurm_cluster: str, tmp_path: Path) -> None:
    plan = failing_pretraining(tmp_path)
    run = api.submit(plan, backend="slurm", slurm=RES, echo=lambda line: None)
    assert [j.id for j in run.todo] == [j.id for j in plan.jobs]  # all queued: the dependents wait with afterok
    states = wait_settled(plan.folder)
    by_stage = {job.stage: job for job in plan.jobs}
    pretrain, dependents = by_stage["pretrain"], [by_stage["finetune"], by_stage["zeroshot"]]
    assert states[pretrain.id] == "failed" and states[by_stage["scratch"].id] == "ok"
    # never started: read blocked while Slurm holds them behind the failed pretraining, cancelled once it drops them
    assert {states[j.id] for j in dependents} <= {"blocked", "cancelled"}, states
    assert not any(read_summary(run_dir(plan.folder, j.id)) for j in dependents)
    # a submit that does not send the pretraining again queues none of them (the backend's own rule)...
    report = submit(dependents, plan.folder.parent, SlurmResources.from_dict(RES))
    assert sorted(report.blocked) == sorted(j.id for j in dependents) and not report.submitted
    # ...and the command records them blocked by it
    again = api.submit(plan, backend="slurm", only="finetune", slurm=RES, echo=lambda line: None)
    assert [j.id for j in again.blocked] == [by_stage["finetune"].id] and not again.todo
    blocked = read_summary(run_dir(plan.folder, by_stage["finetune"].id))
    assert blocked["status"] == "blocked" and f"pretraining job {pretrain.id} is failed" in blocked["error"]


@pytest.mark.slurm
def test_killed_then_requeued_job_resumes_from_its_checkpoint(slurm_cluster: str, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    spec = sweep("slurmlong", matrix={"init": ["scratch"]},
                 base={**TINY["base"], "downstream": {"n_train": 32, "n_val": 8, "n_test": 8},
                       "train": {"epochs": 12, "batch_size": 8, "eval_every": 4, "checkpoint_every_s": 0}})
    root = tmp_path / "results"
    folder, [the_job] = expand(write_sweep(tmp_path, spec), root)
    last = run_dir(folder, the_job.id) / "ckpt" / "last.pt"
    res = SlurmResources.from_dict(RES)

    monkeypatch.setenv(HOLD_ENV, f"{the_job.id}:16")  # the job waits after its 4th epoch's checkpoint
    sid = submit([the_job], root, res).submitted[the_job.id]
    wait_for(lambda: len(ckpt_rows(last)) >= 5, 60, "four epochs before the kill", every=0.3)
    os.kill(wait_for(lambda: job_pid(sid), 10, "the job's process"), signal.SIGKILL)
    wait_for(lambda: query(folder)[the_job.id] == "failed", 60, "the killed job to read failed")
    before_kill = ckpt_rows(last)
    assert len(before_kill) == 5 and to_submit([the_job], folder) == [the_job]

    monkeypatch.setenv(HOLD_ENV, f"{the_job.id}:32")
    sid = submit([the_job], root, res).submitted[the_job.id]
    wait_for(lambda: len(ckpt_rows(last)) >= 9, 60, "epochs after the resubmit", every=0.3)
    before_requeue = ckpt_rows(last)
    subprocess.run(["scontrol", "requeue", sid], check=True)
    release_requeued(sid)
    assert wait_settled(folder, timeout=120) == {the_job.id: "ok"}

    assert "REQUEUED" in sacct(sid, duplicates=True)
    epochs = pd.read_parquet(run_dir(folder, the_job.id) / "epochs.parquet")
    assert list(epochs["step"]) == list(range(0, 49, 4))  # one row per epoch of 4 steps, none twice
    # rows from before each interruption are the originals (their timings), not a rerun from step 0
    for rows in (before_kill, before_requeue):
        assert list(epochs["seconds"][: len(rows)]) == [r["seconds"] for r in rows]


@pytest.mark.slurm
def test_a_pruned_trial_stays_pruned_across_submits(slurm_cluster: str, tmp_path: Path) -> None:
    lrs = [5e-4, 1e-3, 2e-3, 3e-3, 4e-3, 1e-9]  # the last learns nothing: worse than the median from step 1
    spec = sweep("slurmprune", matrix={"init": ["scratch"]},
                 base={**TINY["base"], "downstream": {"n_train": 16, "n_val": 8, "n_test": 8},
                       "train": {"epochs": 3, "batch_size": 4}},
                 tune={"params": {"train.lr": {"grid": lrs}}, "sampler": "grid", "pruner": "median"})
    root = tmp_path / "results"
    folder, jobs = expand(write_sweep(tmp_path, spec), root)
    bad = next(j for j in jobs if j.config.tune.trial == len(lrs) - 1)
    for job in jobs:  # the median pruner needs five finished trials: they run here first
        if job is not bad:
            assert run_job(job, root)["status"] == "ok"
    assert to_submit(jobs, folder) == [bad]

    sid = submit([bad], root, SlurmResources.from_dict(RES)).submitted[bad["id"]]
    assert wait_settled(folder) == {j.id: "pruned" if j is bad else "ok" for j in jobs}
    wait_for(lambda: sacct(sid)[sid].state is None, 60, "Slurm to record COMPLETED")  # the process exited 0
    assert read_summary(run_dir(folder, bad["id"]))["error"].startswith("pruned at step ")
    assert to_submit(jobs, folder) == []
    out = harness(root, "submit", "--backend", "slurm", "--gpus-per-node", "0").stdout
    assert f"0 of {len(jobs)} jobs to run" in out and cli(root, "status").count("pruned") == 1


@pytest.mark.slurm
def test_fake_gpus_reach_jobs_one_per_task_and_shared_in_packed_tasks(slurm_cluster: str, tmp_path: Path) -> None:
    root = tmp_path / "results"
    one, one_jobs = expand(write_sweep(tmp_path, sweep("gpuone", matrix={"model.width": [4, 6],
                                                                        "init": ["scratch"]})), root)
    packed, packed_jobs = expand(write_sweep(tmp_path, sweep("gpupacked", matrix={"model.width": [4, 6],
                                                                                "init": ["scratch"]})), root)
    submit(one_jobs, root, SlurmResources.from_dict(RES))
    report = submit(packed_jobs, root, SlurmResources.from_dict({**RES, "gpus_per_node": 2, "jobs_per_gpu": 1}))
    assert len(set(report.submitted.values())) == 1  # both jobs in one task
    assert set(wait_settled(one).values()) == set(wait_settled(packed).values()) == {"ok"}

    def log_lines(folder: Path) -> str:
        return "".join(p.read_text() for p in (folder / "slurm" / "logs").glob("*/*_log.out"))

    seen = re.findall(r"running 1 of 1 job\(s\) with CUDA_VISIBLE_DEVICES=(\S*)", log_lines(one))
    assert len(seen) == 2 and set(seen) <= {"0", "1"}
    shares = dict(re.findall(r"harness: (\S+) with CUDA_VISIBLE_DEVICES=(\S*)", log_lines(packed)))
    assert shares == dict(zip([j.id for j in packed_jobs], ["0", "1"], strict=True))


@pytest.mark.slurm
def test_bad_cluster_input_is_one_clear_error_and_records_nothing(slurm_cluster: str, tmp_path: Path) -> None:
    root = tmp_path / "results"
    folder, jobs = expand(write_sweep(tmp_path, sweep("slurmbad", matrix={"init": ["scratch"]})), root)
    with pytest.raises(BackendError, match=r"unknown Slurm partition 'nope'; this cluster has debug: set "
                                           r"slurm.partition in the sweep file or pass --partition"):
        submit(jobs, root, SlurmResources.from_dict({**RES, "partition": "nope"}))
    assert not (folder / "slurm").exists()
    with pytest.raises(BackendError, match=r"slurm.gpus_per_node = 5 but partition debug's largest node has 2 GPUs, "
                                           r"so its jobs could never start; set slurm.gpus_per_node: 2"):
        submit(jobs, root, SlurmResources.from_dict({**RES, "gpus_per_node": 5}))
    assert read_submitted(folder) == {}
    assert query(folder) == {jobs[0].id: "missing"}


@pytest.mark.slurm
def test_cancel_stops_a_sweeps_queued_jobs_in_one_call(slurm_cluster: str, tmp_path: Path) -> None:
    root = tmp_path / "results"
    folder, jobs = expand(write_sweep(tmp_path, sweep("slurmcancel", matrix={"init": ["pretrained", "zeroshot"]})),
                          root)
    submit(jobs, root, SlurmResources.from_dict(RES))
    assert cancel(folder) == len(jobs) == 3
    # a job cancelled before it started reaches accounting a moment later (until then it reads missing)
    wait_for(lambda: query(folder) == {j.id: "cancelled" for j in jobs}, 60, "the jobs to read cancelled")
    assert cancel(folder) == 0
    assert to_submit(jobs, folder) == jobs
