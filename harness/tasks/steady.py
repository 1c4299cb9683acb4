"""The steady task: operator learning on the steady systems, (source, coefficient channels) -> solution.

Data are ``harness.pde`` datasets; inputs are normalised per instance (``harness.train.normalise``) with the
training split's statistics (or the pretraining's, when fine-tuning); the objective is supervised learning of
the solution, and the strategies those of ``harness.train.strategies``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from harness import pde
from harness.tasks.task import Task, Tensors
from harness.train.normalise import make_inputs
from harness.train.strategies import Pretraining, Supervised, make_strategy


class SteadyTask(Task):
    """``task: steady`` (the default): see the module docstring."""

    def load(self, part: dict[str, Any], split: str, n: int, *, seed: int, cache: Path) -> pde.PDEData:
        """A split of ``part["system"]`` at ``part["shift"]`` (a level name or an explicit [lo, hi] range)."""
        shift = part["shift"]
        kwargs = {"coef_range": tuple(shift)} if isinstance(shift, list) else {"shift": shift}
        return pde.load_split(part["system"], split, n, resolution=self.config["resolution"], seed=seed,
                              cache_dir=cache, **kwargs)

    def stats(self, train: pde.PDEData) -> dict[str, Any]:
        """The per-instance normalisation statistics the training split was generated with."""
        return train.stats

    def tensors(self, data: pde.PDEData, stats: dict[str, Any]) -> Tensors:
        """(normalised inputs (n, 7, R, R), solutions (n, 1, R, R))."""
        x = make_inputs(data.source, data.coef_common, stats)
        return x, torch.as_tensor(data.solution, dtype=torch.float32)[:, None]

    def objective(self, loss: str) -> Pretraining:
        """Supervised learning of the solution."""
        return Supervised(loss)

    def strategy(self, pretrain: dict[str, Any]) -> Pretraining:
        """``harness.train.strategies.make_strategy``."""
        return make_strategy(pretrain)
