"""One model's training run as data: ``Setup``, what stays fixed from set-up to the end, ``LoopState``, what
the loop advances step by step and saves in ``last.pt``, and ``Run``, both with the run's data and files. The
loop and its steps are ``harness.train.loop``.

``last.pt``'s ``loop`` entry is a plain dict of ``LoopState``'s fields (tensors, numbers, strings, lists and dicts
only, so ``torch.load(weights_only=True)`` reads it); files written before ``LoopState`` existed hold the same
keys and load as they are. A field added later needs a default, so that older files still load.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from harness.job import Budget, TrainConfig
from harness.train.distributed import Ranks
from harness.train.objective import Objective
from harness.train.steady_augment import Augment


@dataclass(frozen=True)
class Setup:
    """What a step, a validation and a checkpoint of one model use besides its ``LoopState``."""

    model: nn.Module
    forward: nn.Module  # the model as trained: under DDP with several ranks, compiled when asked
    optimizer: torch.optim.Optimizer
    generator: torch.Generator  # batch order, augmentation and the objective's training views
    cfg: TrainConfig
    budget: Budget
    objective: Objective
    augment: Augment | None
    use_bf16: bool
    device: torch.device
    ranks: Ranks
    identity: dict[str, Any]  # what must match for last.pt to be resumed (config but the cadence, seed, N)


@dataclass
class LoopState:
    """Where a run stands: everything but ``clock`` is saved, so that a resumed run goes on exactly as it was."""

    step: int = 0  # optimiser steps taken
    order: torch.Tensor | None = None  # this epoch's batch order, and how far into it the run is
    pos: int = 0
    loss_sum: torch.Tensor = field(default_factory=lambda: torch.zeros(()))  # this rank's part since the last row
    loss_count: int = 0  # samples in that sum (all ranks')
    best_val: float = math.inf
    best_step: int = -1
    best_model: dict[str, torch.Tensor] | None = None  # the best weights, on the CPU
    stale: int = 0  # evaluations since the best one
    rows: list[dict[str, float]] = field(default_factory=list)
    status: str = "ok"  # ok | diverged
    error: str = ""
    done: bool = False  # diverged or out of patience
    clock: float = field(default_factory=time.perf_counter)  # when the last row was taken (not saved)

    def to_dict(self, ranks: Ranks) -> dict[str, Any]:
        """The ``loop`` entry of ``last.pt``: the batch order on the CPU, the loss summed over the ranks (a
        collective: every rank calls this)."""
        saved = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "clock"}
        order = None if self.order is None else self.order.cpu()
        return {**saved, "order": order, "loss_sum": ranks.sum(self.loss_sum).item()}

    @classmethod
    def from_dict(cls, saved: dict[str, Any], device: torch.device, ranks: Ranks) -> LoopState:
        """The state a ``loop`` entry describes, on ``device``; rank 0 carries the summed loss on."""
        order = None if saved["order"] is None else saved["order"].to(device)
        loss_sum = torch.tensor(saved["loss_sum"] if ranks.is_main else 0.0, device=device)
        return cls(**{**saved, "order": order, "loss_sum": loss_sum})


@dataclass
class Run:
    """One model's run inside ``train`` (or ``harness.train.fused.train_group``): its set-up, state, data, files,
    evaluation hook and when ``last.pt`` was last written."""

    setup: Setup
    state: LoopState
    train_xy: tuple[torch.Tensor, torch.Tensor]
    val_xy: tuple[torch.Tensor, torch.Tensor]
    workdir: Path
    on_eval: Callable[[dict[str, float]], None] | None
    saved: float = 0.0

    @property
    def over(self) -> bool:
        """Whether the run has taken its budget of steps, or stopped (diverged, out of patience)."""
        return self.state.done or self.state.step >= self.setup.budget.total_steps
