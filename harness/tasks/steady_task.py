"""The steady task: operator learning on the steady systems, (source, coefficient channels) -> solution.

Data are ``harness.pde`` datasets, or the user's files (a part's ``data``, ``harness.data``), as
``harness.data.Samples``; inputs are normalised by the samples' rule (``harness.data.tensors``: per instance for
generated data) with the training split's statistics (or the pretraining's, when they fit); the objective is
supervised learning of the solution, and the strategies those of ``harness.train.strategies``.

A generated training split streams from its cache file (``harness.train.stream.StreamedSplit``, the same batches
bit for bit) when the job's ``stream`` settings say so (``harness.job.StreamConfig``); validation and test
splits, and data files (whose formats do not all allow row reads: refused at expand with ``stream.mode:
always``), stay resident.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from harness.data import has_data
from harness.data.parts import model_channels
from harness.data.samples import Samples, samples_of
from harness.data.source import load
from harness.data.tensors import pick_stats, to_tensors
from harness.job import JobConfig, Model, Pretrain, StreamConfig
from harness.models.build import model_of
from harness.pde.cache import load_split, split_path
from harness.tasks.task import Part, Task, Tensors
from harness.train.strategies import Pretraining, Supervised, make_strategy
from harness.train.stream import StreamedSplit, over_budget


class SteadyTask(Task):
    """``task: steady`` (the default): see the module docstring. ``stream``: the job's ``stream`` settings."""

    def __init__(self, config: JobConfig, stream: StreamConfig | None = None) -> None:
        super().__init__(config)
        self.stream = stream or StreamConfig()

    def model(self, objective: Pretraining, name: str, part: Part, model: Model) -> nn.Module:
        """A model on the channels of the part's files (checked at expand to fit a pretrained model), else the
        objective's."""
        if not has_data(part):
            return super().model(objective, name, part, model)
        ins, outs = model_channels(name, part)
        return model_of(model, in_channels=ins, out_channels=outs, resolution=self.config.resolution)

    def load(self, part: Part, split: str, n: int, *, seed: int, cache: Path) -> Samples | StreamedSplit:
        """A split drawn from the part's files (``data``), else of ``part.system`` at ``part.shift`` (a level name
        or an explicit [lo, hi] range), generated or from the cache; a generated training split that streams
        (``over_budget``) is its cache file opened for streaming, generated there first if need be."""
        if part.data is not None:
            return load(part.data, split, n, seed, cache_dir=str(cache))
        request = self._request(part, seed, cache)
        data = None
        if split == "train" and self.stream.mode != "never":
            path = split_path(part.system, split, n, **request)
            if not path.exists():  # generated and cached first, to stream from the file
                data = load_split(part.system, split, n, **request)
            device = torch.device("cuda" if torch.cuda.is_available() else "cpu")  # as harness.job.run.pick_device
            if (streamed := over_budget(path, self.stream, device)) is not None:
                return streamed
        return samples_of(data if data is not None else load_split(part.system, split, n, **request))

    def cache_file(self, part: Part, split: str, n: int, *, seed: int, cache: Path) -> Path:
        """``harness.pde.cache.split_path`` of the request ``load`` makes."""
        return split_path(part.system, split, n, **self._request(part, seed, cache))

    def _request(self, part: Part, seed: int, cache: Path) -> dict[str, Any]:
        """The keywords of a generated split's request: the grid, the data seed, the cache folder and the shift, a
        level name or an explicit [lo, hi] range."""
        shift = part.shift
        kwargs = {"coef_range": tuple(shift)} if isinstance(shift, list) else {"shift": shift}
        return {"resolution": self.config.resolution, "seed": seed, "cache_dir": cache, **kwargs}

    def stats(self, train: Samples | StreamedSplit, pretrained: dict[str, Any] | None) -> dict[str, Any]:
        """``harness.data.tensors.pick_stats``: the pretrained model's where they fit, else the split's own."""
        return pick_stats(pretrained, train)

    def tensors(self, data: Samples | StreamedSplit, stats: dict[str, Any]) -> Tensors:
        """(normalised inputs (n, F + K, R, R): 7 channels for generated data, solutions (n, T, R, R)); of a
        streamed split, the ``StreamedRows`` that read them batch by batch."""
        if isinstance(data, StreamedSplit):
            return data.tensors(stats)
        return to_tensors(data, stats)

    def objective(self, loss: str) -> Pretraining:
        """Supervised learning of the solution."""
        return Supervised(loss)

    def strategy(self, pretrain: Pretrain) -> Pretraining:
        """``harness.train.strategies.make_strategy``."""
        return make_strategy(pretrain)
