"""The 2D U-Net (Ronneberger et al. 2015) on the periodic square, as an ``Operator``.

Layout, parameter and FLOP formulas: ``harness.models.unet_size``. Features: the decoder's last level,
``channels`` at the input's grid; head: 1x1 conv.
"""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import nn

from harness.models import family
from harness.models.operator import Operator, Pointwise, periodic_conv
from harness.models.unet_size import DEFAULTS


class DoubleConv(nn.Sequential):
    """3x3 conv a -> b, GELU, 3x3 conv b -> b, GELU (circular padding)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(periodic_conv(in_channels, out_channels), nn.GELU(),
                         periodic_conv(out_channels, out_channels), nn.GELU())


class Up(nn.Module):
    """One decoder level: 2x2 stride-2 transposed conv c_l -> c_{l-1}, the skip concatenated before it,
    DoubleConv(2 c_{l-1} -> c_{l-1})."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2)
        self.conv = DoubleConv(2 * out_channels, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """(B, c_l, n / 2, n / 2) and the skip (B, c_{l-1}, n, n) -> (B, c_{l-1}, n, n)."""
        return self.conv(torch.cat([skip, self.up(x)], dim=1))


class UNet(Operator):
    """U-Net of ``channels`` base channels over ``levels`` halvings: (B, C, R, R) -> (B, O, R, R), R a multiple of
    2^levels."""

    arch = "unet"

    def __init__(self, channels: int = DEFAULTS["channels"], levels: int = DEFAULTS["levels"], in_channels: int = 7,
                 out_channels: int = 1) -> None:
        super().__init__()
        self.sizes = family(self.arch).sizes({"channels": channels, "levels": levels})
        self.in_channels, self.out_channels, self.feature_channels = in_channels, out_channels, channels
        widths = [channels << level for level in range(levels + 1)]
        self.lifting = periodic_conv(in_channels, channels)  # the first conv of level 0's DoubleConv
        self.inc = nn.Sequential(nn.GELU(), periodic_conv(channels, channels), nn.GELU())
        self.downs = nn.ModuleList(nn.Sequential(nn.MaxPool2d(2), DoubleConv(a, b))
                                   for a, b in pairwise(widths))
        self.ups = nn.ModuleList(Up(b, a) for a, b in reversed(list(pairwise(widths))))
        self.head = Pointwise(channels, out_channels)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, R, R) -> (B, channels, R, R): down ``levels`` times keeping each level's features, then up,
        each level joined with the features kept at its grid."""
        self.check_input(x)
        self.check_grid(self.sizes, x)
        skips = [self.inc(self.lifting(x))]
        for down in self.downs:
            skips.append(down(skips[-1]))
        x = skips.pop()
        for up in self.ups:
            x = up(x, skips.pop())
        return x
