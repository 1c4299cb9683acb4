"""``Operator``, the module interface every model family implements (``harness.models`` documents it), and the
pieces the families share: the 1x1 convolution, the periodic 3x3 convolution, periodic coordinates."""

from __future__ import annotations

import math
from abc import ABCMeta, abstractmethod
from typing import ClassVar

import torch
from torch import nn

from harness.errors import HarnessError
from harness.models import family


class Operator(nn.Module, metaclass=ABCMeta):
    """Fields (B, C, n, n) -> (B, O, n, n): ``features`` (B, F, n, n), then ``head``; see ``harness.models``."""

    arch: ClassVar[str]
    sizes: dict[str, int]
    in_channels: int
    out_channels: int
    feature_channels: int
    head: nn.Module

    @classmethod
    def from_sizes(cls, sizes: dict[str, int], *, in_channels: int, out_channels: int, resolution: int) -> Operator:
        """The module of these sizes, for inputs of ``in_channels`` on a ``resolution`` grid (only a family tied
        to its grid keeps the resolution)."""
        return cls(**sizes, in_channels=in_channels, out_channels=out_channels)

    @abstractmethod
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, H, W) -> (B, feature_channels, H, W): everything but the head."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, H, W) -> the head's output, (B, out_channels, H, W) for a field head."""
        return self.head(self.features(x))

    def num_params(self) -> int:
        """Real parameters actually held; equals the family's ``count_params`` of the same sizes."""
        return sum(p.numel() for p in self.parameters())

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ``HarnessError`` unless ``x`` is (batch, in_channels, H, W)."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise HarnessError(f"{family(self.arch).label} expects inputs of shape (batch, {self.in_channels}, H, W), "
                               f"but got {tuple(x.shape)}")

    def check_grid(self, sizes: dict[str, int], x: torch.Tensor) -> None:
        """Raise the family's ``SizeError`` unless its sizes fit both sides of ``x``'s grid."""
        for side in sorted(set(x.shape[-2:])):
            family(self.arch).check_grid(sizes, side)


class Pointwise(nn.Conv2d):
    """A 1x1 convolution (same parameters as ``nn.Conv2d(in, out, 1)``) computed as one batched matrix product.

    oneDNN's CPU 1x1 convolution ran 1-3x slower than this product and erratically so (fwd + bwd, 32 channels
    at 64x64); on GPUs both are GEMMs.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in, H, W) -> (B, out, H, W)."""
        b, c, h, w = x.shape
        weight = self.weight.view(1, self.out_channels, c).expand(b, -1, -1)
        out = torch.baddbmm(self.bias.view(1, -1, 1), weight, x.reshape(b, c, h * w))
        return out.view(b, self.out_channels, h, w)


def periodic_conv(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """A 3x3 convolution with circular padding (the fields live on the periodic square): ceil(n / stride)
    points a side out of n."""
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, padding_mode="circular")


def periodic_coordinates(rows: int, cols: int, device: torch.device | str = "cpu",
                         offset: float = 0.0) -> torch.Tensor:
    """(rows cols, 4): (cos 2 pi x, sin 2 pi x, cos 2 pi y, sin 2 pi y) of the points x = (i + offset) / rows,
    y = (j + offset) / cols of a grid on the unit square, row-major as a flattened (rows, cols) field."""
    x = (torch.arange(rows, device=device, dtype=torch.float32) + offset) * (2 * math.pi / rows)
    y = (torch.arange(cols, device=device, dtype=torch.float32) + offset) * (2 * math.pi / cols)
    xx, yy = torch.meshgrid(x, y, indexing="ij")
    return torch.stack([xx.cos(), xx.sin(), yy.cos(), yy.sin()], dim=-1).reshape(rows * cols, 4)
