"""The interface a job's run asks of its task: data, tensors, objectives (with their models) and test metrics.

``harness.job.run`` builds the task of a job's config (``harness.tasks.make.make_task``) and asks it for each split's
tensors and objectives; the training loop only sees the (x, y) tensors, batched, and an ``Objective`` that
views them as (model input, target). What x and y hold is the task's business:

- steady: x the normalised inputs (source and coefficient channels), y the solutions (``SteadyTask``);
- fixed_future / next_step: x the trajectories u (n, nt, R, R), y their coefficients (n, C) in physical units
  (``ForecastTask``): the objectives cut windows of frames out of them and build the model's inputs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import torch
from torch import nn

from harness.data import has_data
from harness.job import Downstream, JobConfig, Model, Pretrain
from harness.train.evaluation import evaluate_metrics
from harness.train.objective import Objective
from harness.train.strategies import Pretraining

Tensors = tuple[torch.Tensor, torch.Tensor]
Part = Pretrain | Downstream


class Task(ABC):
    """What a job learns from its data and how it is scored; one instance per job config."""

    def __init__(self, config: JobConfig) -> None:
        self.config = config

    @abstractmethod
    def load(self, part: Part, split: str, n: int, *, seed: int, cache: Path) -> Any:
        """``n`` samples of ``split`` of the stage's data ``part`` (its ``pretrain`` or ``downstream`` settings),
        drawn with data seed ``seed``, from the cache folder ``cache`` or generated there."""

    @abstractmethod
    def cache_file(self, part: Part, split: str, n: int, *, seed: int, cache: Path) -> Path:
        """The cache file that ``load`` reads (or generates) a generated part's split from, which may not exist yet;
        the part has no ``data`` (a data file's splits are the file's)."""

    @abstractmethod
    def stats(self, train: Any, pretrained: dict[str, Any] | None) -> dict[str, Any]:
        """The normalisation statistics a run uses: those of the pretrained model it loads (``pretrained``, from
        the pretraining's stats.json) where they fit ``train``, else the training split's own (which a
        pretraining writes to its stats.json)."""

    @abstractmethod
    def tensors(self, data: Any, stats: dict[str, Any]) -> Tensors:
        """The (x, y) tensors of a split that the training loop batches and the objectives view."""

    @abstractmethod
    def objective(self, loss: str) -> Pretraining:
        """The task's own objective, learnt with the supervised ``loss`` (``train.loss``): downstream training,
        and supervised pretraining; its ``build_model`` makes the model the task trains."""

    def model(self, objective: Pretraining, name: str, part: Part, model: Model) -> nn.Module:
        """The model ``objective`` trains on the stage's data ``part`` (``name``: pretrain or downstream), of the
        job config's ``model`` (family and sizes): ``objective.build_model``, whatever the data (a task whose
        models follow its files overrides this)."""
        return objective.build_model(model, self.config.resolution)

    def refits(self, pretrain: Pretrain, part: Pretrain | Downstream) -> bool:
        """Whether fine-tuning on ``part`` from a pretraining on ``pretrain`` may meet weights of other shapes,
        which it then re-initialises (``harness.train.loop.load_weights``'s ``refit``): where either reads data
        files, whose channels are the files'."""
        return has_data(part) or has_data(pretrain)

    @abstractmethod
    def strategy(self, pretrain: Pretrain) -> Pretraining:
        """The pretraining strategy of a job's ``pretrain`` settings, on this task's data."""

    def test_metrics(self, model: nn.Module, test: Tensors, objective: Objective,
                     device: torch.device) -> dict[str, Any]:
        """The summary's test columns (``harness.train.evaluation``): ``test_rel_l2``, the mean per-sample
        ``objective.metric`` on ``test``, and the other metrics of ``harness.train.metrics`` where the target is a
        solution field."""
        return evaluate_metrics(model, *test, device=device, objective=objective)
