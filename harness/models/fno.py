"""The 2D Fourier neural operator of Subramanian et al. (2023), with its size as small documented functions.

Layout: lifting 1x1 conv (in_channels -> width); ``n_layers`` Fourier layers, each a spectral convolution
on the lowest ``modes`` frequencies plus a pointwise 1x1 conv, summed, GELU between layers (not after the
last); head 1x1 conv (width -> 2 width) -> GELU -> 1x1 conv (-> out_channels). No grid channels.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from harness.errors import HarnessError


def count_params(width: int, modes: int, in_channels: int = 7, n_layers: int = 4, out_channels: int = 1) -> int:
    """Number of real parameters of ``FNO(width, modes, in_channels, n_layers, out_channels)``.

    With w = width, m = modes, L = n_layers, C = in_channels, O = out_channels:

        P = (C + 1) w                      lifting (weights + bias)
          + L (4 m^2 w^2 + w^2 + w)        spectral: 2 complex (w, w, m, m) blocks, 2 reals each; 1x1 conv
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


class SpectralConv2d(nn.Module):
    """Multiply the lowest ``modes`` x ``modes`` Fourier modes by learned complex (width, width) matrices."""

    def __init__(self, width: int, modes: int) -> None:
        super().__init__()
        self.width = width
        self.modes = modes
        scale = 1.0 / (width * width)
        # Rows k1 in [0, modes) and k1 in [-modes, 0): the rfft keeps only k2 >= 0, so both signs of k1
        # are needed to cover the low-frequency square |k1|, |k2| < modes.
        self.weight_pos = nn.Parameter(scale * torch.rand(width, width, modes, modes, dtype=torch.cfloat))
        self.weight_neg = nn.Parameter(scale * torch.rand(width, width, modes, modes, dtype=torch.cfloat))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, width, H, W) real -> (B, width, H, W) float32; the FFTs and the contraction always run in float32."""
        b, _, h, w = x.shape
        m = self.modes
        with torch.autocast(x.device.type, enabled=False):
            # rfft2 as two 1D passes so that the row transform only runs on the m kept columns.
            x_ft = torch.fft.fft(torch.fft.rfft(x.float(), dim=-1)[..., :m], dim=-2)  # (B, i, H, m)
            out = self._contract(x_ft, b, h)  # (B, o, 2m, m) complex
            # Rows k1 = 0..m-1 and -m..-1 go back in place, the rows between are zero.
            out_ft = torch.cat((out[:, :, :m], out.new_zeros(b, self.width, h - 2 * m, m), out[:, :, m:]), dim=2)
            # irfft treats the k2 = 0 (and Nyquist) column as Hermitian and drops what is not, so the output is
            # real whatever the learned weights; n= zero-fills columns m..W//2 and restores an odd W.
            return torch.fft.irfft(torch.fft.ifft(out_ft, dim=-2), n=w, dim=-1)

    def _contract(self, x_ft: torch.Tensor, b: int, h: int) -> torch.Tensor:
        """Per kept mode, (B, i) @ (i, o) in complex arithmetic, as one real batched matmul over the 2 m^2 modes.

        Complex matmuls have no fast CPU kernel, so the product is written in reals on interleaved (re, im)
        pairs: x as (B, 2i) = [xr_1, xi_1, ...] times the (2i, 2o) real form of W, whose (i, o) 2x2 block is
        [[wr, wi], [-wi, wr]], gives x W as interleaved (B, 2o), i.e. complex (B, o) again without a shuffle.
        Inputs (B, i, H, m) complex; returns (B, o, 2m, m) complex (a view).
        """
        m, width = self.modes, self.width
        n_modes = 2 * m * m
        # (B, i, 2m, m) -> (2m, m, B, i): one complex transpose; modes run over rows 0..m-1, -m..-1, columns.
        x = torch.cat((x_ft[:, :, :m].permute(2, 3, 0, 1), x_ft[:, :, h - m :].permute(2, 3, 0, 1)), dim=0)
        x = torch.view_as_real(x).reshape(n_modes, b, 2 * width)
        # weights (i, o, m, m) complex -> (modes, i, o, [wr, wi]) -> (modes, i, 2, o, 2) real blocks
        wv = torch.cat((torch.view_as_real(self.weight_pos).permute(2, 3, 0, 1, 4),
                        torch.view_as_real(self.weight_neg).permute(2, 3, 0, 1, 4)), dim=0).reshape(n_modes, width,
                                                                                                    width, 2)
        wr, wi = wv.unbind(-1)
        w_block = torch.stack((wv, torch.stack((-wi, wr), dim=-1)), dim=2).reshape(n_modes, 2 * width, 2 * width)
        out = torch.view_as_complex(torch.bmm(x, w_block).view(n_modes, b, width, 2))  # (modes, B, o)
        return out.view(2 * m, m, b, width).permute(2, 3, 0, 1)


class FNO(nn.Module):
    """2D Fourier neural operator: (B, in_channels, R, R) -> (B, out_channels, R, R)."""

    def __init__(self, width: int, modes: int, in_channels: int = 7, n_layers: int = 4, out_channels: int = 1) -> None:
        super().__init__()
        if min(width, modes, in_channels, n_layers, out_channels) < 1:
            raise HarnessError(
                "FNO sizes must all be >= 1, but got "
                f"(width={width}, modes={modes}, in_channels={in_channels}, n_layers={n_layers}, "
                f"out_channels={out_channels})"
            )
        self.width = width
        self.modes = modes
        self.in_channels = in_channels
        self.n_layers = n_layers
        self.out_channels = out_channels
        self.lifting = nn.Conv2d(in_channels, width, 1)
        self.spectral = nn.ModuleList(SpectralConv2d(width, modes) for _ in range(n_layers))
        self.pointwise = nn.ModuleList(nn.Conv2d(width, width, 1) for _ in range(n_layers))
        self.head = nn.Sequential(nn.Conv2d(width, 2 * width, 1), nn.GELU(), nn.Conv2d(2 * width, out_channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map inputs (B, in_channels, H, W) to outputs (B, out_channels, H, W).

        1. check the channels and that ``modes`` fits the grid;
        2. lift each grid point to ``width`` channels (1x1 conv);
        3. each Fourier layer: spectral conv + pointwise 1x1 conv, summed; GELU except after the last;
        4. project with the head (1x1 conv -> GELU -> 1x1 conv).
        """
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise HarnessError(
                f"FNO expects inputs of shape (batch, {self.in_channels}, H, W), but got {tuple(x.shape)}"
            )
        check_modes(self.modes, x.shape[-2], x.shape[-1])
        x = self.lifting(x)
        for i, (spectral, pointwise) in enumerate(zip(self.spectral, self.pointwise, strict=True)):
            x = spectral(x) + pointwise(x)
            if i < self.n_layers - 1:
                x = F.gelu(x)
        return self.head(x)

    def num_params(self) -> int:
        """Real parameters actually held (complex ones count 2); equals ``count_params`` of the same sizes."""
        return sum(p.numel() * (2 if p.is_complex() else 1) for p in self.parameters())
