"""The Slurm backend's plan: which jobs go in which array task, and which arrays wait for which pretrainings.

Pure (no Slurm, no torch), so it is tested without a cluster. A task holds one fused group where the sweep packs
its jobs (`pack:`, ``harness.job.fusable.fused_groups``, the grouping the local and inline backends use), else
`pack` jobs (the `slurm:` block's ``jobs_per_gpu`` per GPU), else, for a job of several ranks, that job alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.backends import shape
from harness.job import Job
from harness.job.fusable import fused_groups, shape_key


@dataclass(frozen=True)
class ArrayChunk:
    """One sbatch array: its tasks (each a list of jobs run together) and the pretraining jobs it waits for."""

    stage: str  # pretrain | downstream
    tasks: list[list[Job]]
    after: tuple[str, ...]  # pretraining job ids (not yet ok) that every task of this array needs
    parallelism: int  # this array's share of the stage's concurrency cap (%N)
    ranks: tuple[int, int] = (1, 1)  # (ranks per node, nodes) of each of its jobs
    fused: bool = False  # each task one fused group (`pack:`), trained as one program on one device


def plan_arrays(jobs: list[Job], max_array_size: int, *, pack: int = 1, parallelism: int = 256,
                waiting: frozenset[str] | set[str] = frozenset()) -> list[ArrayChunk]:
    """Split jobs into sbatch arrays: pretraining first, then downstream jobs that can start now, then those
    that wait for a pretraining job in `waiting`, grouped by it so an array waits for few pretrainings; within
    each, the jobs in tasks (``array_tasks``), and one array (or more) per kind of task (its shape of ranks,
    ``harness.backends.shape``, and whether it is a fused group), since all tasks of an array ask for the same.

    Each array holds at most `max_array_size` tasks; the arrays of one stage split `parallelism` between them (at
    least 1 each). Example: 2 pretraining and 5 fine-tuning jobs, max size 4 -> [pretrain: 2 tasks] [downstream:
    4 tasks, after both] [downstream: 1 task, after its one].
    """
    pre = [j for j in jobs if j.stage == "pretrain"]
    ready = [j for j in jobs if j.stage != "pretrain" and j.depends_on not in waiting]
    held = sorted((j for j in jobs if j.stage != "pretrain" and j.depends_on in waiting),
                  key=lambda j: j.depends_on or "")
    chunks: list[ArrayChunk] = []
    for stage, groups in (("pretrain", [pre]), ("downstream", [ready, held])):
        stage_chunks = []
        for group in groups:
            kinds = array_tasks(group, pack)
            for kind in dict.fromkeys(k for _, k in kinds):
                same = [task for task, k in kinds if k == kind]
                stage_chunks += [(*array, kind) for array in _split(same, max_array_size, waiting)]
        share = max(1, parallelism // max(1, len(stage_chunks)))
        chunks += [ArrayChunk(stage, part, after, share, *kind) for part, after, kind in stage_chunks]
    return chunks


def array_tasks(jobs: list[Job], pack: int) -> list[tuple[list[Job], tuple[tuple[int, int], bool]]]:
    """``jobs`` cut into array tasks, each with its kind (its jobs' shape of ranks, whether it is a fused group), in
    order: each fused group (``fused_groups``) a task, then the jobs no group holds, ``pack`` to a task of one shape
    of ranks (a job of several ranks alone: it is a Slurm job of its own)."""
    out: list[tuple[list[Job], tuple[tuple[int, int], bool]]] = []
    loose: dict[tuple[int, int], list[Job]] = {}
    for group in fused_groups(jobs):
        if shape_key(group[0]) is not None:
            out.append((group, ((1, 1), True)))  # fused jobs run on one rank (harness.sweep.pack)
        else:
            loose.setdefault(shape(group[0]), []).extend(group)
    for ranks, same in loose.items():
        per_task = pack if ranks == (1, 1) else 1
        out += [(same[i:i + per_task], (ranks, False)) for i in range(0, len(same), per_task)]
    return out


def _split(tasks: list[list[Job]], max_array_size: int,
           waiting: frozenset[str] | set[str]) -> list[tuple[list[list[Job]], tuple[str, ...]]]:
    """``tasks`` in arrays of at most ``max_array_size``: (tasks, the pretrainings in ``waiting`` they need) per
    array."""
    out = []
    for i in range(0, len(tasks), max_array_size):
        part = tasks[i:i + max_array_size]
        after = tuple(sorted({j.depends_on for t in part for j in t if j.depends_on in waiting}))
        out.append((part, after))
    return out


def dependency(slurm_ids: list[str], arrays: dict[str, list[str]]) -> str:
    """`afterok:` over Slurm ids, naming a whole array instead of all of its tasks where it can."""
    ids = set(slurm_ids)
    for array_id, tasks in arrays.items():
        if len(tasks) > 1 and set(tasks) <= ids:
            ids = (ids - set(tasks)) | {array_id}
    return "afterok:" + ":".join(sorted(ids))
