"""Batches of trajectories: what every time-dependent objective shares (inputs, windows, augmentation).

A batch is (x = u (B, nt, R, R), y = coefficients (B, C) in the objective's ``channels`` order: the five
``TIME_COEFS`` of heat, advection and Burgers, or navier_stokes' visc, amp), physical units. The model input is
a window of frames as channels, then the coefficient channels, each coefficient divided by its scale
(``COEF_SCALES``; ``harness.tasks.time_task`` explains the normalisation).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from harness.job import Forecast, TrainConfig
from harness.pde import ALL_TIME_SYSTEMS, NAVIER_STOKES, NS_COEFS, TIME_COEFS, TIME_SHIFT_LEVELS, TIME_SYSTEMS
from harness.tasks import window_channels
from harness.train.steady_augment import Augment
from harness.train.strategies import Pretraining
from harness.train.time_augment import make_time_augment

_PARAM = {"nu": "nu", "ax": "a", "ay": "a", "cx": "c", "cy": "c", "visc": "visc", "amp": "amp"}
# Per coefficient: the upper end of its in-distribution range over the systems that have it.
COEF_SCALES = {c: max(levels["id"][_PARAM[c]][1] for levels in TIME_SHIFT_LEVELS.values() if _PARAM[c] in levels["id"])
               for c in (*TIME_COEFS, *NS_COEFS)}


def frame_times(config: Forecast) -> np.ndarray:
    """The times (nt,) of a job's frames: evenly spaced from 0 to its ``horizon``, as the generator's."""
    return np.linspace(0.0, config.horizon, config.nt)


def systems_of(coefs: torch.Tensor, channels: tuple[str, ...] = TIME_COEFS) -> torch.Tensor:
    """(B,) index in ``ALL_TIME_SYSTEMS`` of the equations coefficients (B, C) in ``channels`` order define:
    navier_stokes where they are its (visc, amp); else Burgers where c != 0, heat where nu > 0, advection
    otherwise (one family of equations: a system is its coefficients)."""
    if channels == NS_COEFS:
        return torch.full(coefs.shape[:1], ALL_TIME_SYSTEMS.index(NAVIER_STOKES), device=coefs.device)
    c = coefs[:, [TIME_COEFS.index("cx"), TIME_COEFS.index("cy")]].abs().sum(dim=1)
    heat = coefs[:, TIME_COEFS.index("nu")] > 0
    index = torch.where(heat, TIME_SYSTEMS.index("heat"), TIME_SYSTEMS.index("advection"))
    return torch.where(c > 0, TIME_SYSTEMS.index("burgers"), index)


def frames_at(x: torch.Tensor, start: torch.Tensor, length: int) -> torch.Tensor:
    """Frames ``start[b] .. start[b] + length - 1`` of each trajectory of ``x`` (B, nt, R, R): (B, length, R, R)."""
    index = start[:, None] + torch.arange(length, device=x.device)
    return x.gather(1, index[:, :, None, None].expand(-1, -1, *x.shape[-2:]))


def scaled(coefs: torch.Tensor, scale: Sequence[float]) -> torch.Tensor:
    """Coefficients (B, C) each divided by its ``scale``."""
    return coefs / torch.tensor(scale, dtype=coefs.dtype, device=coefs.device)


def window_inputs(frames: torch.Tensor, coefs: torch.Tensor, scale: Sequence[float]) -> torch.Tensor:
    """A model input: ``frames`` (B, window, R, R), then each coefficient of ``coefs`` (B, C) divided by its
    ``scale`` as a channel."""
    channels = scaled(coefs, scale)
    return torch.cat([frames, channels[:, :, None, None].expand(-1, -1, *frames.shape[-2:]).to(frames.dtype)], 1)


class Trajectories(Pretraining):
    """An objective on batches (x = u (B, nt, R, R), y = coefficients (B, C) in ``channels`` order) of
    trajectories, whose model takes ``window`` frames and the coefficient channels; see the module docstring."""

    dropped: tuple[str, ...] = ("head.",)
    noise_frames: int | None = None  # the frames the noise augmentation perturbs (None: all of them)

    def __init__(self, window: int, times: Sequence[float], loss: str = "sse",
                 channels: tuple[str, ...] = TIME_COEFS) -> None:
        super().__init__(loss)
        self.window, self.times = window, torch.as_tensor(np.asarray(times), dtype=torch.float64)
        self.channels, self.scale = channels, tuple(COEF_SCALES[c] for c in channels)
        self.in_channels = window_channels(window, len(channels))

    def scaled(self, coefs: torch.Tensor) -> torch.Tensor:
        """Each coefficient divided by its scale (``COEF_SCALES``)."""
        return scaled(coefs, self.scale)

    def inputs(self, frames: torch.Tensor, coefs: torch.Tensor) -> torch.Tensor:
        """The model input: ``frames`` (B, window, R, R), then each coefficient / its scale as a channel."""
        return window_inputs(frames, coefs, self.scale)

    def random_window(self, x: torch.Tensor, length: int, generator: torch.Generator) -> torch.Tensor:
        """``length`` consecutive frames of each trajectory from a start drawn uniformly: (B, length, R, R)."""
        start = torch.randint(0, x.shape[1] - length + 1, (x.shape[0],), generator=generator, device=x.device)
        return frames_at(x, start, length)

    def augmentation(self, cfg: TrainConfig) -> Augment | None:
        """``cfg.augment`` on whole trajectories (``make_time_augment``), each sample transformed only where the
        augmentation is a symmetry of the equation its coefficients define."""
        augment = make_time_augment(cfg.augment, prob=cfg.augment_prob, noise_level=cfg.noise_level,
                                    scale_max=cfg.scale_max)
        if augment is None:
            return None

        def on_trajectories(x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
            u, coefs = augment(x, self.times.to(x.device), y, systems_of(y, self.channels), generator,
                               n_inputs=self.noise_frames)
            return u.to(x.dtype), coefs.to(y.dtype)

        return on_trajectories
