"""The DeepONet (Lu et al. 2021) with a convolutional branch for gridded inputs, as an ``Operator``.

Layout, parameter and FLOP formulas: ``harness.models.deeponet_size``. Features: coefficient k times basis
function k at each sensor, (B, basis, R, R); head: 1x1 conv (the inner product, one per output). It evaluates on
the sensor grid it was built for only (the branch flattens its last grid).
"""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import nn

from harness.models import family
from harness.models.deeponet_size import DEFAULTS, TRUNK_HIDDEN, branch_grids
from harness.models.operator import Operator, Pointwise, periodic_conv, periodic_coordinates


class DeepONet(Operator):
    """DeepONet on a ``resolution`` x ``resolution`` sensor grid: (B, C, R, R) -> (B, O, R, R)."""

    arch = "deeponet"

    def __init__(self, branch_width: int = DEFAULTS["branch_width"], trunk_width: int = DEFAULTS["trunk_width"],
                 basis: int = DEFAULTS["basis"], resolution: int = 64, in_channels: int = 7,
                 out_channels: int = 1) -> None:
        super().__init__()
        self.sizes = family(self.arch).sizes({"branch_width": branch_width, "trunk_width": trunk_width,
                                              "basis": basis})
        self.resolution = resolution
        self.in_channels, self.out_channels, self.feature_channels = in_channels, out_channels, basis
        sides = branch_grids(resolution)
        self.lifting = periodic_conv(in_channels, branch_width)  # the branch's first conv
        branch: list[nn.Module] = [nn.GELU()]
        for _ in sides[1:]:
            branch += [periodic_conv(branch_width, branch_width, stride=2), nn.GELU()]
        self.branch = nn.Sequential(*branch, nn.Flatten(), nn.Linear(branch_width * sides[-1] ** 2, basis))
        widths = [4] + [trunk_width] * TRUNK_HIDDEN + [basis]
        self.trunk = nn.Sequential(*(layer for a, b in pairwise(widths) for layer in (nn.Linear(a, b), nn.GELU())))
        # the sensors' coordinates: a buffer that moves with the module, not a weight (not in the state dict)
        self.register_buffer("sensors", periodic_coordinates(resolution, resolution), persistent=False)
        self.head = Pointwise(basis, out_channels)

    @classmethod
    def from_sizes(cls, sizes: dict[str, int], *, in_channels: int, out_channels: int,
                   resolution: int) -> DeepONet:
        """The DeepONet of these sizes on a ``resolution`` sensor grid."""
        return cls(**sizes, resolution=resolution, in_channels=in_channels, out_channels=out_channels)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, R, R) on the sensors -> (B, basis, R, R): the branch's coefficients (B, p) times the trunk's
        basis functions at the sensors (p, R, R), the trunk run once for the batch."""
        self.check_input(x)
        for side in x.shape[-2:]:
            family(self.arch).check_evaluation_grid(self.resolution, side)
        coefficients = self.branch(self.lifting(x))
        basis = self.trunk(self.sensors).T.reshape(1, -1, self.resolution, self.resolution)
        return coefficients[:, :, None, None] * basis
