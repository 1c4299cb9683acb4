"""The time-dependent tasks: fixed_future and next_step on trajectories of heat, advection, Burgers and
Navier-Stokes.

A split's tensors are the trajectories ``x = u`` (n, nt, R, R) and their coefficients ``y`` (n, C) in the
order of the part's coefficient channels (``harness.pde.model_coefs``: the five ``TIME_COEFS``
of heat, advection and Burgers; visc, amp of navier_stokes), generated or drawn from a part's ``data`` file
(``pretraining-pdes``: checked at expand to hold the task's ``nt`` frames over its ``horizon`` and exactly one
family's coefficients; a file of visc and amp is labelled navier_stokes), both in physical units, so the
Lie-point augmentations (``harness.train.time_augment``) act on them as derived. The objectives cut windows of
frames out of a batch and build the model's input (``Trajectories.inputs``): the ``time_window`` frames as
channels, then the coefficient channels.

Coefficient channels across a pretraining and its fine-tuning: a model takes the channels of the data it
trains on, so a heat/advection/Burgers pretraining (five) fine-tuned on Navier-Stokes (two) has a lifting of
another shape: fine-tuning re-initialises it and loads the rest, the rule for data files of other channel
counts (``ForecastTask.refits``; the summary's ``transferred`` then lacks ``lifting``); ``init: zeroshot``,
which evaluates the pretrained model as it is, is refused at expand.

Normalisation: fixed, the same for every job. u is not rescaled (the initial conditions are sums of sines of
amplitude at most 0.5, or Navier-Stokes' random field of RMS ~0.26: u is O(1) by construction, and the relative
L2 metrics do not depend on its scale). Each coefficient channel is the coefficient divided by its scale
(``COEF_SCALES``), the upper end of its in-distribution range over the systems that have it (as the paper
divides by its maximum values), so in-distribution channels lie
in [0, 1] and out-of-distribution ones beyond -- whatever the training set, where statistics of an OOD
training set would rescale its coefficients into the in-distribution range -- and a model fine-tuned from
a pretraining sees exactly the inputs a model trained from scratch sees. Hence no statistics travel
(``ForecastTask.stats`` records the scales in a pretraining's stats.json).

- ``FixedFuture``: the first ``time_window`` frames -> frame ``target``.
- ``NextStep``: a window at a random start -> the frame after it. Training draws k in 0..``unroll`` per batch
  and runs k pushforward steps first, without gradients (the model's own predictions fill the window, as it
  will meet them in a rollout). Validation scores one step; the test is the autoregressive ``rollout`` from
  the first ``time_window`` true frames to the end of the trajectory.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from harness.data.samples import Trajectories as FileTrajectories
from harness.data.source import load as load_file
from harness.job import JobConfig, Pretrain
from harness.pde import TIME_COEFS, model_coefs
from harness.pde.cache import load_time_split, time_split_path
from harness.pde.time_dataset import TimeData
from harness.tasks import target_frame
from harness.tasks.pretext import make_pretext
from harness.tasks.task import Part, Task, Tensors
from harness.tasks.trajectories import COEF_SCALES, Trajectories, frame_times
from harness.train import ROLLOUT_BATCH, metrics
from harness.train.objective import Objective
from harness.train.strategies import Pretraining

# A rolled-out frame stays valid while its relative L2 error is at most this: half the error of predicting zero
# (1). For a prediction of the true frame's norm, error e means correlation 1 - e^2 / 2 with the truth: 0.875 here,
# stricter than the 0.8 of the "high-correlation time" in the PDE surrogate literature (e.g. PDE-Refiner).
VALID_REL_L2 = 0.5


class FixedFuture(Trajectories):
    """The first ``window`` frames -> frame ``target``; supervised (fine-tuning loads every weight)."""

    dropped = ()
    fields = True

    def __init__(self, window: int, times: Sequence[float], target: int, loss: str = "sse",
                 channels: tuple[str, ...] = TIME_COEFS) -> None:
        super().__init__(window, times, loss, channels)
        self.target = target_frame(target, len(times))
        self.noise_frames = window  # noise on the inputs only: the target frame stays a solution

    def view(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Input: the first ``window`` frames and the coefficients; target: frame ``target`` (B, 1, R, R)."""
        return self.inputs(x[:, :self.window], y), x[:, self.target:self.target + 1]


class NextStep(Trajectories):
    """``window`` frames -> the next one, with up to ``unroll`` pushforward steps in training; supervised.

    Noise (the augmentation) perturbs whole trajectories, as the paper's augmented datasets: every frame is the
    input of some window.
    """

    dropped = ()
    fields = True

    def __init__(self, window: int, times: Sequence[float], unroll: int = 0, loss: str = "sse",
                 channels: tuple[str, ...] = TIME_COEFS) -> None:
        super().__init__(window, times, loss, channels)
        self.unroll = unroll

    def view(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """One step: a window at a random start and the frame after it."""
        chunk = self.random_window(x, self.window + 1, generator)
        return self.inputs(chunk[:, :self.window], y), chunk[:, self.window:]

    def train_view(self, forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor,
                   generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """k ~ U{0..unroll} pushforward steps (one k per batch) from a random window, without gradients, then
        the (input, target) of the step after them."""
        k = int(torch.randint(0, self.unroll + 1, (1,), generator=generator, device=x.device))
        chunk = self.random_window(x, self.window + k + 1, generator)
        frames = chunk[:, :self.window]
        with torch.no_grad():
            for _ in range(k):
                frames = torch.cat([frames[:, 1:], forward(self.inputs(frames, y)).to(frames.dtype)], dim=1)
        return self.inputs(frames, y), chunk[:, -1:]


def rollout(model: nn.Module, test: Tensors, objective: NextStep, device: torch.device) -> dict[str, Any]:
    """Autoregressive rollout of ``model`` over every test trajectory: from its first ``window`` true frames,
    each prediction is fed back as the newest frame, to the end of the trajectory (K = nt - window steps). Only
    the K predicted frames are scored, never the input window.

    Returns the summary's columns: ``rollout_step_rel_l2`` (JSON list, K values): at each step k the mean over
    trajectories of ||pred_k - u_k|| / ||u_k||; ``rollout_accum_rel_l2`` (JSON list): the same over the frames
    predicted so far, ||pred_1..k - u_1..k|| / ||u_1..k||; ``rollout_rel_l2``, its last value (the whole
    rollout), which is also the job's ``test_rel_l2``. For every other metric of ``harness.train.metrics``:
    ``rollout_step_<name>`` (JSON list: at step k, the mean over trajectories, max_err the max) and
    ``test_<name>`` over the whole rollout (the mean over frames and trajectories, PDEBench's mean over time;
    max_err the max); and ``rollout_valid_steps``, the mean over trajectories of ``valid_steps``.
    """
    was_training = model.training
    model.eval()
    errors, norms, scores = [], [], []  # per batch: (b, K) squared errors and norms; name -> (b, K) metrics
    x, y = test
    with torch.no_grad():
        for i in range(0, x.shape[0], ROLLOUT_BATCH):
            u, coefs = x[i:i + ROLLOUT_BATCH].to(device), y[i:i + ROLLOUT_BATCH].to(device)
            frames, err, norm, step_scores = u[:, :objective.window], [], [], []
            for step in range(objective.window, u.shape[1]):
                pred = model(objective.inputs(frames, coefs)).float()
                true = u[:, step:step + 1]
                err.append((pred - true).square().flatten(1).sum(dim=1))
                norm.append(true.square().flatten(1).sum(dim=1))
                step_scores.append(metrics.per_sample(pred, true))
                frames = torch.cat([frames[:, 1:], pred.to(frames.dtype)], dim=1)
            errors.append(torch.stack(err, dim=1).double().cpu())
            norms.append(torch.stack(norm, dim=1).double().cpu())
            scores.append({name: torch.stack([s[name] for s in step_scores], dim=1).cpu() for name in metrics.ADDED})
    model.train(was_training)
    err, norm = torch.cat(errors), torch.cat(norms)
    per_step = (err / norm).sqrt().mean(dim=0)
    accumulated = (err.cumsum(dim=1) / norm.cumsum(dim=1)).sqrt().mean(dim=0)
    final = float(accumulated[-1])
    columns = {"test_rel_l2": final, "rollout_rel_l2": final, "rollout_step_rel_l2": json.dumps(per_step.tolist()),
               "rollout_accum_rel_l2": json.dumps(accumulated.tolist()),
               "rollout_valid_steps": float(valid_steps((err / norm).sqrt()).double().mean())}
    for name in metrics.ADDED:
        value = torch.cat([batch[name] for batch in scores])  # (n, K)
        step = value.amax(dim=0) if name in metrics.MAXED else value.mean(dim=0)
        columns[f"rollout_step_{name}"] = json.dumps(step.tolist())
        columns[f"test_{name}"] = float(step.max() if name in metrics.MAXED else step.mean())
    return columns


def valid_steps(step_rel_l2: torch.Tensor, threshold: float = VALID_REL_L2) -> torch.Tensor:
    """Per trajectory of ``step_rel_l2`` (n, K: the relative L2 of each predicted frame), the steps predicted
    before its error first exceeds ``threshold``: K for a trajectory that never does."""
    return (step_rel_l2 <= threshold).int().cumprod(dim=1).sum(dim=1)


class ForecastTask(Task):
    """``task: fixed_future`` and ``task: next_step``; see the module docstring."""

    def __init__(self, config: JobConfig) -> None:
        super().__init__(config)
        assert config.forecast is not None  # a time task's config has its keys (harness.tasks.task_keys)
        self.forecast = config.forecast

    def load(self, part: Part, split: str, n: int, *, seed: int, cache: Path) -> TimeData | FileTrajectories:
        """A split drawn from the part's files (``data``: trajectories of the task's frames, checked at expand),
        else of trajectories of ``part.system`` at the named level ``part.shift``."""
        if part.data is not None:
            return load_file(part.data, split, n, seed, cache_dir=str(cache))
        return load_time_split(part.system, split, n, **self._request(part, seed, cache))

    def cache_file(self, part: Part, split: str, n: int, *, seed: int, cache: Path) -> Path:
        """``harness.pde.cache.time_split_path`` of the request ``load`` makes."""
        return time_split_path(part.system, split, n, **self._request(part, seed, cache))

    def _request(self, part: Part, seed: int, cache: Path) -> dict[str, Any]:
        """The keywords of a generated split's request: the level, the grid, the frames and horizon, the data seed
        and the cache folder."""
        time = self.forecast
        return {"shift": part.shift, "resolution": self.config.resolution, "nt": time.nt, "horizon": time.horizon,
                "seed": seed, "cache_dir": cache}

    def stats(self, train: TimeData | FileTrajectories, pretrained: dict[str, Any] | None) -> dict[str, Any]:
        """The fixed scales of the data's coefficient channels, whatever the data or the pretraining (see the
        module docstring)."""
        channels = model_coefs(train.system) if isinstance(train, TimeData) else train.channels
        return {"coef_scale": [COEF_SCALES[c] for c in channels]}

    def tensors(self, split: TimeData | FileTrajectories, stats: dict[str, Any]) -> Tensors:
        """(u (n, nt, R, R), coefficients (n, C) in the part's channel order), float32, physical units."""
        coefs = split.coef_common if isinstance(split, TimeData) else split.coefficients
        return torch.as_tensor(split.u, dtype=torch.float32), torch.as_tensor(coefs, dtype=torch.float32)

    def objective(self, loss: str, part: Part | None = None) -> Trajectories:
        """``FixedFuture`` or ``NextStep``, as the config's task, on the coefficient channels of ``part``'s data
        (the downstream part unless given)."""
        time, times = self.forecast, frame_times(self.forecast)
        data = part if part is not None else self.config.downstream
        assert data is not None  # a job without its own pretraining trains on its downstream part
        channels = model_coefs(data.system)
        if time.task == "fixed_future":
            assert time.target is not None  # a supervised fixed_future job's keys hold its target
            return FixedFuture(time.time_window, times, time.target, loss, channels)
        return NextStep(time.time_window, times, time.unroll or 0, loss, channels)

    def strategy(self, pretrain: Pretrain) -> Pretraining:
        """Supervised: the task's objective; else a pretext task on windows (``harness.tasks.pretext``); both on
        the pretraining data's coefficient channels."""
        if pretrain.strategy == "supervised":
            return self.objective(pretrain.train.loss, pretrain)
        return make_pretext(pretrain, self.forecast.time_window, frame_times(self.forecast),
                            model_coefs(pretrain.system))

    def refits(self, pretrain: Pretrain, part: Part) -> bool:
        """As every task, and also where the pretraining's data have other coefficient channels than ``part``'s
        (a heat/advection/Burgers pretraining fine-tuned on Navier-Stokes): the lifting is re-initialised."""
        return super().refits(pretrain, part) or model_coefs(pretrain.system) != model_coefs(part.system)

    def test_metrics(self, model: nn.Module, test: Tensors, objective: Objective,
                     device: torch.device) -> dict[str, Any]:
        """next_step: the ``rollout``; otherwise the objective's metric."""
        if isinstance(objective, NextStep):
            return rollout(model, test, objective, device)
        return super().test_metrics(model, test, objective, device)

