"""An exported model as a torch module on physical units: ``load_model(folder)``.

The folder is what ``harness export`` wrote (``harness.portable.folder``): the network's weights
(``model.safetensors``), its family, sizes and channels (``config.json``) and the normalisation statistics
(``stats.json``). Nothing else is read: no results folder, no data.

    model = harness.load_model("exported/fno-poisson")
    u = model(f, k)            # steady: sources (n, F, R, R) and coefficients (n, K) -> solutions (n, T, R, R)
    u_next = model(frames, k)  # time task: the last time_window frames (n, W, R, R) and coefficients (n, C)
    u = model.rollout(frames, k, steps)  # next_step: steps frames (n, steps, R, R), each fed back

The inputs are normalised inside the module exactly as the job normalised them in training (steady:
``harness.data.tensors.inputs_of``; time: ``harness.tasks.trajectories.window_inputs``), on the CPU, and the
network runs where the module is (``model.to(device)``); outputs are float32 in the target's units.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from harness.data.tensors import inputs_of
from harness.errors import HarnessError
from harness.models.build import model_of
from harness.portable import CONFIG, STATS, WEIGHTS, read_json
from harness.tasks.trajectories import window_inputs


class PhysicalModel(nn.Module):
    """A trained network with its input normalisation: physical inputs -> physical outputs (module docstring).

    ``config``: the exported ``config.json`` (``task``, ``time_window``, ``coefficient_channels`` ...); ``stats``:
    the statistics the inputs are normalised with (``normalise``: instance or channel for a steady task, absent
    for a time task, whose coefficients are divided by ``coef_scale``)."""

    def __init__(self, network: nn.Module, config: dict[str, Any], stats: dict[str, Any]) -> None:
        super().__init__()
        self.network, self.config, self.stats = network, config, stats
        self.task: str = config["task"]
        self.window: int | None = config.get("time_window")

    def inputs(self, fields: torch.Tensor, coefficients: torch.Tensor) -> torch.Tensor:
        """The network's normalised input (on the CPU) of physical ``fields`` and ``coefficients``."""
        fields = torch.as_tensor(fields, dtype=torch.float32).cpu()
        coefficients = torch.as_tensor(coefficients, dtype=torch.float32).cpu()
        if self.window is None:
            return inputs_of(fields, coefficients, self.stats, self.stats["normalise"])
        if fields.shape[1] != self.window:
            raise HarnessError(f"the model takes the last {self.window} frames (n, {self.window}, R, R), got "
                               f"{tuple(fields.shape)}: pass that many frames")
        return window_inputs(fields, coefficients, self.stats["coef_scale"])

    def forward(self, fields: torch.Tensor, coefficients: torch.Tensor) -> torch.Tensor:
        """Steady: solutions (n, T, R, R) of fields (n, F, R, R) and coefficients (n, K); time task: the frame it
        predicts (n, 1, R, R) from ``time_window`` frames and coefficients (n, C). Physical units both ways."""
        device = next(self.network.parameters()).device
        return self.network(self.inputs(fields, coefficients).to(device)).float()

    def rollout(self, frames: torch.Tensor, coefficients: torch.Tensor, steps: int) -> torch.Tensor:
        """next_step: ``steps`` frames (n, steps, R, R) after ``frames`` (n, time_window, R, R), each prediction fed
        back as the newest frame (the job's test rollout, ``harness.tasks.time_task.rollout``)."""
        if self.task != "next_step":
            raise HarnessError(f"rollout applies to next_step models; this one is {self.task}: call the model")
        window, out = torch.as_tensor(frames, dtype=torch.float32), []
        with torch.no_grad():
            for _ in range(steps):
                pred = self(window, coefficients).cpu()
                out.append(pred)
                window = torch.cat([window[:, 1:], pred.to(window.dtype)], dim=1)
        return torch.cat(out, dim=1)


def load_model(folder: str | Path) -> PhysicalModel:
    """The exported model in ``folder`` (``harness export``) as a ``PhysicalModel`` in eval mode on the CPU;
    HarnessError naming the file when the folder is not a complete export."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    config, stats = read_json(folder / CONFIG), read_json(folder / STATS)
    network = model_of(config["model"], in_channels=config["in_channels"], out_channels=config["out_channels"],
                       resolution=config["resolution"])
    try:
        weights = load_file(folder / WEIGHTS)
    except (OSError, SafetensorError) as exc:
        raise HarnessError(f"{folder / WEIGHTS}: cannot read the weights ({exc}); export the job again") from None
    network.load_state_dict(weights, strict=True)
    return PhysicalModel(network, config, stats).eval()
