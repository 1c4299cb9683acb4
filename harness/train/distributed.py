"""Data-parallel training across processes: the thin layer between the one training loop and torch.distributed.

A job that spans several ranks runs the same ``train`` in every rank process (launched by
``harness.backends.launch``; the process group comes from the launcher's environment, ``init_from_env``).
Every rank draws the same seeded batch order, augments and views the whole global batch (so the generator
stays in step with a single process), then trains on its own contiguous share of it (``Ranks.share``); DDP
all-reduces the gradients. The sweep's ``batch_size`` stays the global batch whatever the number of ranks.
Validation and test sets are split across ranks and their metric sums all-reduced (``Ranks.sum``). Rank 0
alone writes checkpoints and results (``Ranks.is_main``).

Each rank's loss is weighted by its share of the global batch (``Weighted``), so DDP's mean over ranks is the
single-process batch mean even when the last batch of an epoch does not split evenly; a rank whose share is
empty trains on one sample with weight 0 (every rank must take part in the all-reduce).

Without a process group (``current()`` is one rank) every method is the identity and the loop runs exactly as a
single process.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

# A collective that waits longer than this for a peer fails (a rank that died or hangs ends the job, no hang).
COLLECTIVE_TIMEOUT = timedelta(seconds=float(os.environ.get("HARNESS_COLLECTIVE_TIMEOUT_S", "300")))


@dataclass(frozen=True)
class Ranks:
    """This process's place in a data-parallel job: ``rank`` of ``world`` (0 of 1 without a process group)."""

    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        """Whether this rank writes checkpoints and results (rank 0)."""
        return self.rank == 0

    def part(self, n: int) -> slice:
        """This rank's contiguous share of ``n`` items (the shares of all ranks tile range(n), sizes differ by
        at most one); everything in one process."""
        return slice(n * self.rank // self.world, n * (self.rank + 1) // self.world)

    def wrap(self, model: nn.Module) -> nn.Module:
        """The module to train: ``model`` under DistributedDataParallel when there are several ranks."""
        if self.world == 1:
            return model
        device_ids = [model_device(model)] if model_device(model).type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=device_ids, forward_sync_buffers=False)

    def share(self, inputs: torch.Tensor, target: torch.Tensor,
              objective: Any) -> tuple[torch.Tensor, torch.Tensor, Any]:
        """This rank's part of a global batch and the objective to train it with: ``objective`` with its loss
        weighted by ``local * world / global`` (``Weighted``), so that the mean over ranks of the weighted losses
        (DDP's gradient mean) is the global batch mean. An empty part becomes the first sample with weight 0.
        With one rank: the batch and ``objective`` as they are."""
        if self.world == 1:
            return inputs, target, objective
        n = inputs.shape[0]
        part = self.part(n)
        local = part.stop - part.start
        if local == 0:
            return inputs[:1], target[:1], Weighted(objective, 0.0)
        return inputs[part], target[part], Weighted(objective, local * self.world / n)

    def sum(self, value: torch.Tensor) -> torch.Tensor:
        """``value`` summed over the ranks (every rank gets the sum); ``value`` itself with one rank."""
        if self.world == 1:
            return value
        value = value.clone()
        dist.all_reduce(value)
        return value

    def max(self, value: torch.Tensor) -> torch.Tensor:
        """``value``'s elementwise max over the ranks (every rank gets it); ``value`` itself with one rank."""
        if self.world == 1:
            return value
        value = value.clone()
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return value

    def any(self, flag: bool, device: torch.device) -> bool:
        """Whether ``flag`` holds on any rank (so that all ranks act together, e.g. checkpoint)."""
        if self.world == 1:
            return flag
        return bool(self.sum(torch.tensor(float(flag), device=device)).item())


def model_device(model: nn.Module) -> torch.device:
    """The device of ``model``'s first parameter."""
    return next(model.parameters()).device


def current() -> Ranks:
    """This process's ranks: from the initialised default process group, else a single rank."""
    if dist.is_available() and dist.is_initialized():
        return Ranks(dist.get_rank(), dist.get_world_size())
    return Ranks()


class Weighted:
    """An objective whose training loss is scaled by ``weight`` (a rank's share of the global batch); views and
    metrics are the wrapped objective's."""

    def __init__(self, objective: Any, weight: float) -> None:
        self.objective, self.weight = objective, weight

    def view(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """The wrapped objective's view."""
        return self.objective.view(x, y, generator)

    def loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The wrapped objective's loss times ``weight``."""
        return self.objective.loss(pred, target) * self.weight

    def metric(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The wrapped objective's metric."""
        return self.objective.metric(pred, target)


def init_from_env() -> Ranks:
    """Join the process group the launcher describes: torchrun's RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR /
    MASTER_PORT, or Slurm's SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID with MASTER_ADDR / MASTER_PORT set by the
    Slurm backend. NCCL on GPUs (this rank's GPU selected), gloo on the CPU."""
    env = os.environ
    rank = int(env.get("RANK", env.get("SLURM_PROCID", "0")))
    world = int(env.get("WORLD_SIZE", env.get("SLURM_NTASKS", "1")))
    local = int(env.get("LOCAL_RANK", env.get("SLURM_LOCALID", "0")))
    if torch.cuda.is_available():
        torch.cuda.set_device(local % torch.cuda.device_count())
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend, init_method="env://", rank=rank, world_size=world, timeout=COLLECTIVE_TIMEOUT)
    return Ranks(rank, world)


@contextmanager
def process_group() -> Iterator[Ranks]:
    """This rank inside the launcher's process group (``init_from_env``) for the body, then out of it cleanly:
    after a body that returned, the ranks wait for each other (so none tears down while a peer still talks to
    it); the DDP wrappers that reference cycles still hold are collected and the group destroyed while the
    interpreter is whole (a group left to interpreter exit can abort the process from gloo's threads). After a
    body that raised, no barrier: the launcher stops the other ranks."""
    ranks = init_from_env()
    try:
        yield ranks
        dist.barrier()
    finally:
        gc.collect()
        dist.destroy_process_group()
