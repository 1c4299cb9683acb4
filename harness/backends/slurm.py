"""The Slurm backend: a whole sweep queued at once as submitit job arrays, and nothing else.

`submit` returns as soon as sbatch accepted every array: pretraining arrays first, then downstream arrays
that wait for their pretraining tasks through `--dependency=afterok:...`. Arrays are chunked to the cluster's
MaxArraySize; the chunks of one stage share one concurrency cap. Under a sweep's `pack:` each task holds one fused
group of jobs, trained as one program (``harness.job.run.run_group``); the plan is ``slurm_plan``. Each array task
is a `SlurmTask` (a submitit `Checkpointable`): on preemption or timeout it is requeued unchanged and `run_group`
resumes each job from its `ckpt/last.pt`. A job of several ranks (its `resources`, ``harness.backends``) is a
Slurm job of its own with one task per rank (``--nodes``, ``--ntasks-per-node``), in arrays of jobs of its shape;
each task joins the process group as its rank (``SlurmTask._run_rank``). The code a job runs is a snapshot of the
`harness` and `analysis` packages taken at submit time (results/<sweep>/slurm/code/<hash>/), so editing the source
does not change queued jobs.

Folder: results/<sweep>/slurm/ {submitted.json, code.json, code/<hash>/, logs/<slurm id>/}. State reading
(`query`) lives in `slurm_state`, the resources (`SlurmResources`, checked at expand) in ``harness.backends``;
`SlurmBackend` is this module behind the `Backend` protocol.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from submitit.helpers import Checkpointable

import harness
from harness.backends import SlurmResources
from harness.backends.select import Readiness, readiness
from harness.backends.slurm_checks import check_request
from harness.backends.slurm_plan import ArrayChunk, dependency, plan_arrays
from harness.backends.slurm_state import query, read_submitted, record_submitted, run_cmd, slurm_dir, sweep_states
from harness.errors import BackendError
from harness.job import Job
from harness.job.fusable import fused_groups
from harness.job.process import job_env_exports
from harness.job.provenance import GIT_REV_ENV, git_revision
from harness.store import State
from harness.store.atomic import write_json_atomic
from harness.store.folders import disk_state, read_plan

__all__ = ["ArrayChunk", "SlurmBackend", "SlurmResources", "SlurmTask", "SubmitReport", "cancel", "dependency",
           "plan_arrays", "query", "submit"]


@dataclass(frozen=True)
class SlurmBackend:
    """Job arrays on a Slurm cluster through submitit; ``resources`` from the sweep's `slurm:` block and flags."""

    resources: SlurmResources = field(default_factory=SlurmResources)

    @classmethod
    def from_options(cls, spec: dict[str, Any], options: dict[str, Any]) -> SlurmBackend:
        """The sweep file's `slurm:` block overridden by the CLI's Slurm flags (None: not given)."""
        flags = {k: options.get(k) for k in (f.name for f in fields(SlurmResources))}
        return cls(SlurmResources.from_dict({**(spec.get("slurm") or {}), **flags}))

    def status(self, sweep_path: Path, jobs: list[Job]) -> dict[str, State]:
        """One sacct call merged with the run folders (``slurm_state.query``)."""
        return query(sweep_path, jobs)

    def submit(self, jobs: list[Job], plan: list[Job], sweep_path: Path) -> str:
        """Queue ``jobs`` and return without waiting (``submit``)."""
        report = submit(jobs, Path(sweep_path).parent, self.resources)
        return (f"{Path(sweep_path).name}: {report}\n"
                "queued; follow it with `harness status`, stop it with `harness cancel`")

    def cancel(self, sweep_path: Path) -> int:
        """scancel the sweep's queued and running tasks (``cancel``)."""
        return cancel(sweep_path)


class SlurmTask(Checkpointable):
    """One array task: runs its jobs with `run_group` / `run_job`, skipping those already ok on disk; it fails (a
    non-zero exit) when a pretraining job of it did not end ok, so that Slurm never starts the tasks that wait on it.

    One job, or one fused group (`pack:`, ``harness.job.fusable.fused_groups``, as the planner cut it), runs
    in-process with `run_group`; several other jobs run as subprocesses, round-robin over the task's
    CUDA_VISIBLE_DEVICES and splitting its CPUs; a job of several ranks runs in every Slurm task of its job, each as
    one rank. Being `Checkpointable`, submitit's `checkpoint()` requeues this same task on timeout or preemption
    (rank 0 does, for the whole Slurm job), and each job (every rank, each job of a group) resumes from its own
    `ckpt/last.pt`.
    """

    def __init__(self, jobs: list[Job], root: str) -> None:
        self.jobs = jobs
        self.root = root

    def __call__(self) -> dict[str, str]:
        sweep = Path(self.root) / self.jobs[0].sweep
        todo = [j for j in self.jobs if not disk_state(sweep, j).is_done()]
        print(f"harness: running {len(todo)} of {len(self.jobs)} job(s) with CUDA_VISIBLE_DEVICES="
              f"{os.environ.get('CUDA_VISIBLE_DEVICES', '')}", flush=True)
        if len(todo) == 1 and todo[0].world_size > 1:
            self._run_rank(todo[0])
        elif len(fused_groups(todo)) == 1:  # one job, or one fused group: one program in this process
            from harness.job.run import run_group

            if len(todo) > 1:
                print(f"harness: training {len(todo)} job(s) as one fused group: {', '.join(j.id for j in todo)}",
                      flush=True)
            run_group(todo, Path(self.root))
        elif todo:
            self._run_packed(todo)
        states = {j.id: disk_state(sweep, j) for j in self.jobs}
        unfit = [j.id for j in self.jobs if j.stage == "pretrain" and states[j.id] is not State.OK]
        if unfit:  # a non-zero exit, so that the tasks waiting on it (afterok) never start
            raise RuntimeError(f"pretraining job(s) {', '.join(unfit)} did not end ok: their dependents stay blocked")
        return states

    def _run_rank(self, job: Job) -> None:
        """This Slurm task as one rank of ``job``: rank, world and rendezvous from Slurm through submitit's
        helper (the job's first host; a port drawn from the Slurm job id, so every task and every requeue
        agree), exported as torchrun would (``harness.train.distributed.init_from_env``)."""
        from submitit.helpers import TorchDistributedEnvironment

        from harness.backends.rank import run_rank

        os.environ.pop("MASTER_PORT", None)  # one inherited from the submitting shell would win over the job id's
        env = TorchDistributedEnvironment().export(set_cuda_visible_devices=False, overwrite=True)
        print(f"harness: {job.id} rank {env.rank} of {env.world_size}, process group at "
              f"{env.master_addr}:{env.master_port}", flush=True)
        run_rank(job, Path(self.root))

    def _run_packed(self, todo: list[Job]) -> None:
        gpus = [g for g in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if g]
        cpus = int(os.environ.get("SLURM_CPUS_PER_TASK", os.cpu_count() or 1))
        procs = []
        for i, job in enumerate(todo):
            env = {**os.environ, "OMP_NUM_THREADS": str(max(1, cpus // len(todo)))}
            if gpus:
                env["CUDA_VISIBLE_DEVICES"] = gpus[i % len(gpus)]
            print(f"harness: {job.id} with CUDA_VISIBLE_DEVICES={env.get('CUDA_VISIBLE_DEVICES', '')}", flush=True)
            proc = subprocess.Popen([sys.executable, "-m", "harness.backends.slurm", self.root],
                                    stdin=subprocess.PIPE, env=env, text=True)
            assert proc.stdin is not None
            proc.stdin.write(json.dumps(job.to_dict()))
            proc.stdin.close()
            procs.append((job.id, proc))
        bad = [f"{jid} (exit {code})" for jid, proc in procs if (code := proc.wait())]
        if bad:
            raise RuntimeError(f"packed job process(es) died: {', '.join(bad)}")


def snapshot_code(code_root: Path) -> Path:
    """Copy the imported `harness` and `analysis` packages to code_root/<content hash>/ (once per content)."""
    packages = [Path(harness.__file__).parent]
    spec = importlib.util.find_spec("analysis")
    if spec and spec.submodule_search_locations:
        packages.append(Path(next(iter(spec.submodule_search_locations))))
    files = sorted((p.name, f.relative_to(p), f) for p in packages for f in p.rglob("*")
                   if f.is_file() and "__pycache__" not in f.parts and f.suffix != ".pyc")
    digest = hashlib.sha256()
    for name, rel, path in files:
        digest.update(f"{name}/{rel}\0".encode() + path.read_bytes() + b"\0")
    dest = Path(code_root) / digest.hexdigest()[:12]
    if not dest.is_dir():
        code_root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=code_root))
        for name, rel, path in files:
            (tmp / name / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, tmp / name / rel)
        with contextlib.suppress(OSError):  # another submit made the same snapshot meanwhile
            tmp.rename(dest)
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def check_cluster(resources: SlurmResources, jobs: list[Job]) -> int:
    """Fail early with the fix when Slurm cannot take ``jobs`` (no tools, unknown partition, a request or ranks
    its nodes or limits can never satisfy: ``slurm_checks.check_request``); returns the cluster's MaxArraySize."""
    for tool in ("sbatch", "srun"):
        if shutil.which(tool) is None:
            raise BackendError(f"`{tool}` is not on PATH: the slurm backend needs the Slurm client tools; "
                               "run on a Slurm login node (or export SLURM_CONF) or use --backend local")
    config = run_cmd(["scontrol", "show", "config"], "check that slurmctld is up (`scontrol ping`)")
    found = re.search(r"^MaxArraySize\s*=\s*(\d+)", config, re.M)
    max_array_size = int(found.group(1)) if found else 1001
    if resources.partition:
        names = [p.rstrip("*") for p in run_cmd(["sinfo", "-h", "-o", "%P"], "check that slurmctld is up").split()]
        if resources.partition not in names:
            raise BackendError(f"unknown Slurm partition {resources.partition!r}; this cluster has "
                               f"{', '.join(names) or 'none'}: set slurm.partition in the sweep file or "
                               "pass --partition")
    check_request(resources, jobs)
    return max_array_size


@dataclass
class SubmitReport:
    """What one submit queued: job id -> Slurm id, the arrays, the jobs left blocked, the code snapshot."""

    submitted: dict[str, str] = field(default_factory=dict)
    arrays: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    snapshot: Path | None = None

    def __str__(self) -> str:
        text = f"queued {len(self.submitted)} job(s) in {len(self.arrays)} Slurm array(s)"
        text += f" ({', '.join(self.arrays)})" if self.arrays else ""
        if self.blocked:
            text += f"; {len(self.blocked)} blocked (their pretraining cannot run)"
        if self.cancelled:
            text += f"; cancelled {len(self.cancelled)} stale queued task(s)"
        return text + (f"; code snapshot {self.snapshot}" if self.snapshot else "")


def _executor(logs: Path, res: SlurmResources, snapshot: Path, git_rev: str, sweep: str, chunk: ArrayChunk) -> Any:
    """A submitit AutoExecutor for Slurm with the resources and the pinned-code setup lines, for the tasks of
    ``chunk``: for jobs of several ranks, one task per rank with ``cpus_per_task`` CPUs and, unless
    ``gpus_per_node`` is 0, one GPU each (srun ends every rank when one fails); a fused group's task one GPU (its
    one program's device); any other task ``gpus_per_node``."""
    import submitit

    per_node, nodes = chunk.ranks
    several = per_node * nodes > 1
    gpus = (per_node if several else 1 if chunk.fused else res.gpus_per_node) if res.gpus_per_node else None

    executor = submitit.AutoExecutor(folder=logs / "%j", cluster="slurm")
    params: dict[str, Any] = {
        "name": f"harness-{sweep}", "timeout_min": res.time_min, "cpus_per_task": res.cpus_per_task,
        "nodes": nodes, "tasks_per_node": per_node, "slurm_srun_args": ["--kill-on-bad-exit=1"] if several else [],
        "slurm_setup": [*res.setup, f"export PYTHONPATH={shlex.quote(str(snapshot))}${{PYTHONPATH:+:$PYTHONPATH}}",
                        "export PYTHONSAFEPATH=1",  # the snapshot, never the current directory's harness
                        f"export {GIT_REV_ENV}={shlex.quote(git_rev)}",
                        "export OMP_NUM_THREADS=${OMP_NUM_THREADS:-${SLURM_CPUS_PER_TASK:-1}}",  # its own CPUs
                        *job_env_exports()],
    }
    optional = {"slurm_partition": res.partition, "slurm_account": res.account, "slurm_qos": res.qos,
                "slurm_constraint": res.constraint, "mem_gb": res.mem_gb,
                "gpus_per_node": gpus}
    executor.update_parameters(**params, **{k: v for k, v in optional.items() if v is not None})
    return executor


def submit(jobs: list[Job], root: Path, resources: SlurmResources) -> SubmitReport:
    """Queue `jobs` (chosen by `harness.backends.select.select`) on Slurm and return without waiting.

    Checks the cluster first (nothing is written when it cannot take the jobs); a downstream job whose
    pretraining is neither ok, queued, nor in `jobs` (``readiness``) is left out as blocked; queued tasks of jobs
    being sent again (left behind a failed pretraining) are cancelled first. Each array is recorded in submitted.json
    only after sbatch accepted it.
    """
    report = SubmitReport()
    if not jobs:
        return report
    max_array_size = check_cluster(resources, jobs)
    root = Path(root).resolve()
    sweep = jobs[0].sweep
    sweep_dir = root / sweep
    plan = read_plan(sweep_dir, missing_ok=True)
    states, submitted, records = sweep_states(sweep_dir, plan.jobs if plan else jobs)
    sending = {j.id for j in jobs if j.stage == "pretrain"}
    known = {sid: r.state for sid, r in records.items()}
    waiting = sending | {j for j, s in states.items() if s.is_active()}
    report.blocked = [j.id for j in jobs if readiness(j, states, sending) is Readiness.BLOCKED]
    jobs = [j for j in jobs if j.id not in report.blocked]
    stale = sorted({submitted[j.id] for j in jobs if _active(known.get(submitted.get(j.id, "")))})
    if stale:
        run_cmd(["scancel", *stale], "cancel them by hand with scancel and submit again")
        report.cancelled = stale

    folder = slurm_dir(sweep_dir)
    report.snapshot = snapshot_code(folder / "code")
    git_rev = git_revision()
    write_json_atomic(folder / "code.json", {"harness_version": harness.__version__, "git_rev": git_rev,
                                             "snapshot": str(report.snapshot), "python": sys.executable,
                                             "submitted_at": time.strftime("%Y-%m-%dT%H:%M:%S")})
    dep_ids = {j: sid for j, sid in submitted.items() if _active(states.get(j))}
    arrays: dict[str, list[str]] = {}
    chunks = plan_arrays(jobs, max_array_size, pack=resources.pack, parallelism=resources.array_parallelism,
                         waiting=frozenset(waiting))
    for n, chunk in enumerate(chunks, 1):
        extra = {"dependency": dependency([dep_ids[d] for d in chunk.after], arrays)} if chunk.after else {}
        executor = _executor(folder / "logs", resources, report.snapshot, git_rev, sweep, chunk)
        executor.update_parameters(slurm_array_parallelism=chunk.parallelism, slurm_additional_parameters=extra)
        try:
            with contextlib.redirect_stderr(io.StringIO()), executor.batch():
                handles = [executor.submit(SlurmTask(task, str(root))) for task in chunk.tasks]
        except Exception as exc:  # submitit raises with sbatch's stderr as the message
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise BackendError(
                f"sbatch rejected {chunk.stage} array {n}/{len(chunks)} ({len(chunk.tasks)} task(s)): {reason}; "
                "fix the slurm settings (partition, account, qos, time_min, gpus_per_node, cpus_per_task, "
                f"mem_gb) and submit again ({len(report.submitted)} job(s) of earlier arrays stay queued)"
            ) from None
        ids = {j.id: h.job_id for task, h in zip(chunk.tasks, handles, strict=True) for j in task}
        record_submitted(sweep_dir, ids)
        report.submitted.update(ids)
        dep_ids.update(ids)
        array_id = handles[0].job_id.split("_")[0]
        arrays[array_id] = [h.job_id for h in handles]
        report.arrays.append(array_id)
    return report


def _active(state: State | None) -> bool:
    """Pending or running (None: unknown, or a COMPLETED record)."""
    return state is not None and state.is_active()


def cancel(sweep_dir: Path) -> int:
    """scancel every queued or running task of the sweep (one call); returns how many jobs it stopped."""
    submitted = read_submitted(sweep_dir)
    _, _, records = sweep_states(sweep_dir)
    jobs = [j for j, sid in submitted.items() if sid in records and _active(records[sid].state)]
    if jobs:
        run_cmd(["scancel", *sorted({submitted[j] for j in jobs})], "cancel them by hand with scancel")
    return len(jobs)


def _main(argv: list[str]) -> int:
    """`python -m harness.backends.slurm ROOT` with one job's JSON on stdin: a packed task's child process."""
    from harness.job.run import run_job

    run_job(Job.from_dict(json.load(sys.stdin)), Path(argv[0]))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
