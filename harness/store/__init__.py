"""The torch-free rules of the sweep folder: job states and stages, typed once for the store, the backends,
status, tuning and analysis, and the names its folders may have (``PLAIN_NAME``: a sweep name or a job id).

Both are ``str``-valued enums: a member equals its spelling (``State.OK == "ok"``), so it goes to JSON and
Parquet as that spelling, and ``State(text)`` reads it back. What a state means for a submit:

- done (``is_done``): a final result, never run again: ``ok``, and ``pruned`` (a trial stopped by its pruner);
- terminal (``is_terminal``): the job ended and changes only when it is submitted again: the done states and
  ``failed``, ``diverged``, ``blocked``, ``cancelled``, ``timeout``, ``preempted``;
- active (``is_active``): ``pending`` or ``running`` in a queue;
- ``missing``: never ran (no summary on disk and no queue record).

The rest of the package is the sweep folder itself: its layout, plan and summary rows (``folders``), atomic
writes (``atomic``), the results table (``collect``), the manifest (``manifest``), locks (``lock``),
stale runs (``stale``), status lines (``status``), progress (``progress``, ``watch``), and the files a user
names with ``--out`` (``outputs``).
"""

from __future__ import annotations

import re
from enum import Enum
from pathlib import Path

DEFAULT_ROOT = Path("results")  # where sweep folders go unless a root is given

# A sweep name or a job id: one plain path part (never `..`, never a separator), as folders under a results root.
PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


class State(str, Enum):
    """The state of one job, read from its folder (summary ``status``) and, on Slurm, merged with the queue."""

    OK = "ok"
    FAILED = "failed"
    DIVERGED = "diverged"
    BLOCKED = "blocked"
    PRUNED = "pruned"
    PENDING = "pending"
    RUNNING = "running"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"
    PREEMPTED = "preempted"
    MISSING = "missing"

    __hash__ = str.__hash__  # a member and its spelling are the same dict key

    def __str__(self) -> str:
        return self.value

    def is_done(self) -> bool:
        """A final result: a submit never runs the job again (``ok``, ``pruned``)."""
        return self in (State.OK, State.PRUNED)

    def is_active(self) -> bool:
        """Waiting or running in a queue."""
        return self in (State.PENDING, State.RUNNING)

    def is_terminal(self) -> bool:
        """The job ended (done or not) and stays so until it is submitted again."""
        return not self.is_active() and self is not State.MISSING

    def needs_run(self, *, retry_failed: bool = False) -> bool:
        """Whether a submit (re)runs a job in this state: everything not done nor active, except ``diverged``
        (a lower learning rate, not a rerun, fixes it) unless ``retry_failed``."""
        if self is State.DIVERGED:
            return retry_failed
        return not self.is_done() and not self.is_active()


class Stage(str, Enum):
    """The stage of a job; its ``prefix`` starts the job id, its ``init`` is the sweep's ``init`` value."""

    PRETRAIN = "pretrain"
    FINETUNE = "finetune"
    SCRATCH = "scratch"
    ZEROSHOT = "zeroshot"

    __hash__ = str.__hash__  # a member and its spelling are the same dict key

    def __str__(self) -> str:
        return self.value

    @property
    def prefix(self) -> str:
        """The job-id prefix: pt, ft, sc, zs."""
        return {"pretrain": "pt", "finetune": "ft", "scratch": "sc", "zeroshot": "zs"}[self.value]

    @property
    def init(self) -> str:
        """The sweep's ``init`` value that makes this stage ("" for pretraining, which every init may need)."""
        return {"pretrain": "", "finetune": "pretrained", "scratch": "scratch", "zeroshot": "zeroshot"}[self.value]

    @classmethod
    def of_init(cls, init: str) -> Stage:
        """The downstream stage of an ``init`` value (pretrained -> finetune, scratch, zeroshot)."""
        return next(stage for stage in cls if stage.init == init and stage is not cls.PRETRAIN)
