"""The FNO's size as small documented functions, torch-free (``harness.models`` registers them as ``fno``, and
re-exports them): ``count_params`` and ``flops_per_sample`` measure it (``FNO.num_params`` equals
``count_params``); ``check_modes`` is the rule ``FNO.forward`` enforces; ``train_memory`` is what one training job
holds on its device, which expand compares with the largest device the backends offer. ``Memory`` and the byte
sizes are every family's (``harness.models.Family.train_memory``).

The FNO itself (torch) is ``harness.models.fno``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness.errors import HarnessError

DEFAULTS = {"width": 32, "modes": 8}  # a sweep's model.width and model.modes unless it sets them
WIDTH_KEYS = ("width",)  # what a parameter target scales
MEMORY_FIX = "a smaller model.width, model.modes (or model.params)"  # what holds less on the device
TRAIN_PASSES = 3  # a train step (forward + backward, ~2 forwards) in forward passes
FLOAT_BYTES = 4  # parameters, optimiser state, activations and data are float32
# Bytes of one parameter during training: weight, gradient and Adam's two moments.
PARAM_TRAIN_BYTES = 4 * FLOAT_BYTES


def count_params(width: int, modes: int, in_channels: int = 7, n_layers: int = 4, out_channels: int = 1) -> int:
    """Number of real parameters of ``FNO(width, modes, in_channels, n_layers, out_channels)``.

    With w = width, m = modes, L = n_layers, C = in_channels, O = out_channels:

        P = (C + 1) w                      lifting (weights + bias)
          + L (4 m^2 w^2 + w^2 + w)        spectral: complex (2m, m, w, w), 2 reals each; 1x1 conv
          + (2 w^2 + 2 w) + (2 w O + O)    head

    The spectral term dominates: P ~ 16 w^2 m^2 for L = 4 (width 16 / modes 4: 67,329).
    """
    w, m = width, modes
    lifting = (in_channels + 1) * w
    layers = n_layers * (4 * m * m * w * w + w * w + w)
    head = (2 * w * w + 2 * w) + (2 * w * out_channels + out_channels)
    return lifting + layers + head


def flops_per_sample(
    width: int, modes: int, resolution: int, in_channels: int = 7, n_layers: int = 4, out_channels: int = 1
) -> float:
    """Approximate forward FLOPs for one sample on a ``resolution`` x ``resolution`` grid.

    A multiply-add is 2 FLOPs, a complex multiply-add 8; N = R^2 grid points:

        lifting      2 N C w
        per layer    2 N w^2                  pointwise 1x1 conv
                   + 5 N log2(N) w            rfft2 + irfft2 (~2.5 N log2 N each, per channel)
                   + 8 (2 m^2) w^2            spectral contraction over the 2 m^2 kept modes
        head         2 N (2 w^2 + 2 w O)

    Biases, GELU and the zero-filled spectrum are ignored. Backward is about twice the forward.
    """
    w, m, n = width, modes, resolution * resolution
    lifting = 2 * n * in_channels * w
    layer = 2 * n * w * w + 5 * n * math.log2(n) * w + 8 * 2 * m * m * w * w
    head = 2 * n * (2 * w * w + 2 * w * out_channels)
    return float(lifting + n_layers * layer + head)


def check_modes(modes: int, height: int, width: int) -> None:
    """Raise ``HarnessError`` unless ``modes`` frequencies per dimension fit a ``height`` x ``width`` grid."""
    if 2 * modes > height or modes > width // 2 + 1:
        raise HarnessError(
            f"modes={modes} is too large for resolution {height}x{width}: the FNO keeps frequencies "
            f"-modes..modes-1 along rows and 0..modes-1 along columns, so 2*modes <= {height} and "
            f"modes <= {width // 2 + 1} must hold; use modes <= {min(height // 2, width // 2 + 1)} "
            "or a finer grid"
        )


def activation_floats(width: int, resolution: int, in_channels: int = 7, n_layers: int = 4,
                      out_channels: int = 1, batch: int = 1) -> int:
    """Floats a batch's forward pass keeps for the backward, plus the backward's own transients (an upper
    bound): N (4 (L + 1) w + C + O) per sample, N = R^2.

    Measured with autograd's saved-tensor hooks on this FNO: 12.5-14.8 w N floats for L = 4 (width 8-64,
    modes 4-32, R 16-128), against 20 w N here.
    """
    n = resolution * resolution
    return batch * n * (4 * (n_layers + 1) * width + in_channels + out_channels)


@dataclass(frozen=True)
class Memory:
    """Bytes one training job holds on its device: parameters with their gradients and Adam state, one batch's
    activations, and the training and validation sets (resident on the device for the whole run)."""

    params: int
    activations: int
    data: int

    @property
    def total(self) -> int:
        """All of it."""
        return self.params + self.activations + self.data


def train_memory(width: int, modes: int, resolution: int, *, batch: int, samples: int, in_channels: int = 7,
                 out_channels: int = 1, n_layers: int = 4, sample_floats: int | None = None) -> Memory:
    """What training an FNO of these sizes on ``samples`` resident samples (training + validation) at batch size
    ``batch`` holds on its device (see ``Memory``); a sample holds ``sample_floats`` floats (default: its
    input and output channels on the grid)."""
    params = count_params(width, modes, in_channels, n_layers, out_channels) * PARAM_TRAIN_BYTES
    activations = activation_floats(width, resolution, in_channels, n_layers, out_channels, batch) * FLOAT_BYTES
    per_sample = (in_channels + out_channels) * resolution * resolution if sample_floats is None else sample_floats
    data = samples * per_sample * FLOAT_BYTES
    return Memory(params, activations, data)


def check_grid(width: int, modes: int, resolution: int) -> tuple[str, str] | None:
    """(key, what must hold and the fix) unless ``modes`` fit a resolution x resolution grid (``check_modes``)."""
    try:
        check_modes(modes, resolution, resolution)
    except HarnessError as exc:
        return "modes", str(exc)
    return None
