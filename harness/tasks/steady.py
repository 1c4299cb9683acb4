"""The steady task: operator learning on the steady systems, (source, coefficient channels) -> solution.

Data are ``harness.pde`` datasets, or the user's files (a part's ``data``, ``harness.data``), as
``harness.data.Samples``; inputs are normalised by the samples' rule (``harness.data.tensors``: per instance for
generated data) with the training split's statistics (or the pretraining's, when they fit); the objective is
supervised learning of the solution, and the strategies those of ``harness.train.strategies``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness import pde
from harness.data import Samples, load, samples_of
from harness.data.sweep import has_data
from harness.data.tensors import pick_stats, to_tensors
from harness.tasks.task import Task, Tensors
from harness.train.strategies import Pretraining, Supervised, make_strategy


class SteadyTask(Task):
    """``task: steady`` (the default): see the module docstring."""

    def load(self, part: dict[str, Any], split: str, n: int, *, seed: int, cache: Path) -> Samples:
        """A split drawn from the part's files (``data``), else of ``part["system"]`` at ``part["shift"]`` (a
        level name or an explicit [lo, hi] range), generated or from the cache."""
        if has_data(part):
            return load(part["data"], split, n, seed, cache_dir=str(cache))
        shift = part["shift"]
        kwargs = {"coef_range": tuple(shift)} if isinstance(shift, list) else {"shift": shift}
        return samples_of(pde.load_split(part["system"], split, n, resolution=self.config["resolution"], seed=seed,
                                         cache_dir=cache, **kwargs))

    def stats(self, train: Samples, pretrained: dict[str, Any] | None) -> dict[str, Any]:
        """``harness.data.tensors.pick_stats``: the pretrained model's where they fit, else the split's own."""
        return pick_stats(pretrained, train)

    def tensors(self, data: Samples, stats: dict[str, Any]) -> Tensors:
        """(normalised inputs (n, F + K, R, R): 7 channels for generated data, solutions (n, T, R, R))."""
        return to_tensors(data, stats)

    def objective(self, loss: str) -> Pretraining:
        """Supervised learning of the solution."""
        return Supervised(loss)

    def strategy(self, pretrain: dict[str, Any]) -> Pretraining:
        """``harness.train.strategies.make_strategy``."""
        return make_strategy(pretrain)
