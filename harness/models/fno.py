"""The 2D Fourier neural operator of Subramanian et al. (2023), with its size as small documented functions.

Layout: lifting 1x1 conv (in_channels -> width); ``n_layers`` Fourier layers, each a spectral convolution
on the lowest ``modes`` frequencies plus a pointwise 1x1 conv, summed, GELU between layers (not after the
last); head 1x1 conv (width -> 2 width) -> GELU -> 1x1 conv (-> out_channels). No grid channels.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from harness.errors import HarnessError
from harness.models import check_modes, count_params, flops_per_sample
from harness.models.operator import Operator, Pointwise

__all__ = ["FNO", "Pointwise", "SpectralConv2d", "check_modes", "count_params", "flops_per_sample",
           "upgrade_state_dict"]


def _column_weights(m: int, n: int, device: torch.device) -> torch.Tensor:
    """How often rfft column k (0 <= k < m) of a length-n real signal stands in its full spectrum: 1 for k = 0 and
    the Nyquist column n/2, 2 for the others (each also stands for its mirror -k)."""
    weights = torch.full((m,), 2.0, device=device)
    weights[0] = 1.0
    if n % 2 == 0 and m > n // 2:
        weights[n // 2] = 1.0
    return weights


def _batched(function: type[torch.autograd.Function], dim: int | None, to: int, x: torch.Tensor, *args: Any,
             out_dim: int | None = None) -> tuple[torch.Tensor, int | None]:
    """The vmap rule of the functions below (``torch.func.vmap``, fused training): the function applied to the
    batched tensor itself, the vmapped dimension moved to ``to`` (where the function treats it as one more batch
    dimension), and the output's vmapped dimension (``out_dim``, else ``to``)."""
    if dim is None:
        return function.apply(x, *args), None
    return function.apply(x.movedim(dim, to), *args), to if out_dim is None else out_dim


class LowRfft(torch.autograd.Function):
    """``rfft(x, dim=-1)[..., :m]`` with a gradient computed on the m kept columns.

    PyTorch's own backward of rfft then slice zero-fills a full complex spectrum and runs a complex FFT on it;
    the adjoint of "keep m rfft columns" is an irfft of those columns alone: dL/dx = n irfft(G / c), c from
    ``_column_weights`` (G: the gradient of the kept columns, as PyTorch passes it, dL/dRe + i dL/dIm).
    """

    @staticmethod
    def forward(x: torch.Tensor, m: int) -> torch.Tensor:  # noqa: D102 - see the class
        return torch.fft.rfft(x, dim=-1)[..., :m].contiguous()

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:  # noqa: D102
        ctx.n = inputs[0].shape[-1]

    vmap = staticmethod(lambda info, in_dims, x, m: _batched(LowRfft, in_dims[0], 0, x, m))

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # noqa: D102
        n, m = ctx.n, grad.shape[-1]
        return torch.fft.irfft(grad / _column_weights(m, n, grad.device), n=n, dim=-1, norm="forward"), None


class LowIrfft(torch.autograd.Function):
    """``irfft(y, n=n, dim=-1)`` of m <= n // 2 + 1 columns, whose gradient is the m columns of one rfft.

    PyTorch's backward of irfft transforms the gradient to a full two-sided spectrum and then narrows it; the
    gradient of column k is c_k / n rfft(g)_k (c from ``_column_weights``; Im of columns 0 and n/2 get 0, as
    irfft ignores them).
    """

    @staticmethod
    def forward(y: torch.Tensor, n: int) -> torch.Tensor:  # noqa: D102 - see the class
        return torch.fft.irfft(y, n=n, dim=-1)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:  # noqa: D102
        ctx.n, ctx.m = inputs[1], inputs[0].shape[-1]

    vmap = staticmethod(lambda info, in_dims, y, n: _batched(LowIrfft, in_dims[0], 0, y, n))

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # noqa: D102
        n, m = ctx.n, ctx.m
        return torch.fft.rfft(grad, dim=-1, norm="forward")[..., :m] * _column_weights(m, n, grad.device), None


# Up to this many kept columns a truncated real DFT is cheaper as a matrix product (4 m n FLOPs a row, at GEMM
# speed) than as an FFT (~2.5 n log2 n, memory-bound): measured on CPU, forward + backward of both ways at n = 64
# and 128, the product wins up to m = 16-20 (by 1.2-2x at m = 8), the FFT from m = 20-24.
DFT_MAX_MODES = 16


@functools.lru_cache(maxsize=64)
def _dft_matrices(n: int, m: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Real matrices of the truncated DFT pair on interleaved (re, im) columns, float32 from float64 values.

    ``forward`` (n, 2m): x @ forward = rfft(x)[..., :m]; ``inverse`` (2m, n): y @ inverse = irfft(y, n) for
    y with m columns (column weights c_k / n, Im of columns 0 and n/2 multiplied by sin 0 = 0).
    """
    with torch.inference_mode(False):  # cached: a first call under inference mode must not make them unusable
        k = torch.arange(m, dtype=torch.float64)
        theta = 2 * math.pi * torch.outer(torch.arange(n, dtype=torch.float64), k) / n  # (n, m)
        basis = torch.stack((torch.cos(theta), -torch.sin(theta)), dim=-1)  # (n, m, 2)
        inverse = (basis * (_column_weights(m, n, torch.device("cpu")).double() / n)[:, None]).reshape(n, 2 * m).T
        return basis.reshape(n, 2 * m).float().to(device), inverse.contiguous().float().to(device)


def low_rfft(x: torch.Tensor, m: int) -> torch.Tensor:
    """The first m columns of ``rfft(x, dim=-1)`` (complex, contiguous), as a matrix product or an FFT."""
    n = x.shape[-1]
    if m <= DFT_MAX_MODES:
        forward, _ = _dft_matrices(n, m, x.device)
        return torch.view_as_complex((x @ forward).unflatten(-1, (m, 2)))
    return LowRfft.apply(x, m)


def low_irfft(y: torch.Tensor, n: int) -> torch.Tensor:
    """``irfft(y, n=n, dim=-1)`` of y's m columns, as a matrix product or an FFT."""
    m = y.shape[-1]
    if m <= DFT_MAX_MODES:
        _, inverse = _dft_matrices(n, m, y.device)
        return torch.view_as_real(y).flatten(-2) @ inverse
    return LowIrfft.apply(y, n)


class Transpose(torch.autograd.Function):
    """``x.mT.contiguous()`` (the last two dimensions swapped), whose backward is a contiguous transpose too
    (autograd's own leaves a strided gradient that a later reshape copies element by element, 2-3x slower)."""

    @staticmethod
    def forward(x: torch.Tensor) -> torch.Tensor:  # noqa: D102 - see the class
        return x.mT.contiguous()

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:  # noqa: D102
        pass

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return grad.mT.contiguous()

    vmap = staticmethod(lambda info, in_dims, x: _batched(Transpose, in_dims[0], 0, x))


class CombineProducts(torch.autograd.Function):
    """Real products p = (modes, [Xr, Xi], B, o, [.Wr, .Wi]) -> the complex product XW = (modes, B, o).

    XW = XrWr - XiWi + i (XrWi + XiWr). Written as a function so that the backward writes the gradient of p in
    one pass (autograd of the four strided slices zero-fills a copy of p for each).
    """

    @staticmethod
    def forward(p: torch.Tensor) -> torch.Tensor:  # noqa: D102 - see the class
        return torch.view_as_complex(torch.stack((p[:, 0, ..., 0] - p[:, 1, ..., 1], p[:, 0, ..., 1] + p[:, 1, ..., 0]),
                                                 dim=-1))

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:  # noqa: D102
        pass

    # batched (harness.train.fused): the runs' dimension goes among the batch dimensions the products keep
    vmap = staticmethod(lambda info, in_dims, p: _batched(CombineProducts, in_dims[0], 2, p, out_dim=1))

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:  # noqa: D102
        g = torch.view_as_real(grad)  # dL/dRe, dL/dIm of XW
        out = g.new_empty(g.shape[0], 2, *g.shape[1:])
        out[:, 0] = g  # d/d(XrWr) = dL/dRe, d/d(XrWi) = dL/dIm
        out[:, 1, ..., 0] = g[..., 1]  # d/d(XiWr) = dL/dIm
        torch.neg(g[..., 0], out=out[:, 1, ..., 1])  # d/d(XiWi) = -dL/dRe
        return out


class SpectralConv2d(nn.Module):
    """Multiply the lowest ``modes`` x ``modes`` Fourier modes by learned complex (width, width) matrices.

    ``weight`` (2 modes, modes, width, width, [re, im]) holds one complex (in, out) matrix per kept coefficient
    as real pairs (real parameters take the fused optimiser step): rows k1 = 0..modes-1 then -modes..-1,
    columns k2 = 0..modes-1 (the rfft keeps only k2 >= 0, so both signs of k1 are needed to cover the
    low-frequency square |k1|, |k2| < modes).
    """

    def __init__(self, width: int, modes: int) -> None:
        super().__init__()
        self.width = width
        self.modes = modes
        scale = 1.0 / (width * width)
        # Drawn as two (in, out, k1, k2) blocks, as in the reference FNO code, then stored mode-major.
        pos, neg = (scale * torch.rand(width, width, modes, modes, dtype=torch.cfloat) for _ in range(2))
        self.weight = nn.Parameter(_mode_major(pos, neg))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, width, H, W) real -> (B, width, H, W) float32; the FFTs and the contraction always run in float32."""
        b, _, h, w = x.shape
        m = self.modes
        with torch.autocast(x.device.type, enabled=False):
            # rfft2 as two 1D passes so that the row transform only runs on the m kept columns.
            x_ft = torch.fft.fft(low_rfft(x.float(), m), dim=-2)  # (B, i, H, m)
            out = self._contract(_rows(x_ft, m), b)  # (B, o, 2m, m) complex
            if h > 2 * m:  # rows k1 = 0..m-1 and -m..-1 go back in place, the rows between are zero
                out = torch.cat((out[:, :, :m], out.new_zeros(b, self.width, h - 2 * m, m), out[:, :, m:]), dim=2)
            return low_irfft(torch.fft.ifft(out, dim=-2), w)

    def _contract(self, x: torch.Tensor, b: int) -> torch.Tensor:
        """Per kept mode, (B, i) @ (i, o) in complex arithmetic, as one real batched matmul over the 2 m^2 modes.

        Complex matmuls have no fast CPU kernel, so the product is taken in reals: [Xr; Xi] (2B, i) times
        [Wr, Wi] (i, 2o) (the weight's own memory, (re, im) interleaved) gives the four products XrWr, XrWi,
        XiWr, XiWi at once, and XW = XrWr - XiWi + i (XrWi + XiWr). The layout changes are whole 2D transposes,
        (B i, modes) <-> (modes, B i), the fastest copy there is (when 2m = H the row FFT's strided output is
        copied to rows first). (B, i, 2m, m) complex in, (B, o, 2m, m) out.
        """
        m, width = self.modes, self.width
        n_modes = 2 * m * m
        x = Transpose.apply(torch.view_as_real(x).reshape(b * width, 2 * n_modes))  # (modes, [re, im], B, i)
        weight = self.weight.view(n_modes, width, 2 * width)  # (modes, i, (o, [re, im]))
        products = torch.bmm(x.view(n_modes, 2 * b, width), weight)
        out = CombineProducts.apply(products.view(n_modes, 2, b, width, 2))  # (modes, B, o) complex
        return Transpose.apply(out.view(n_modes, b * width)).view(b, width, 2 * m, m)


def _mode_major(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """Complex (in, out, m, m) blocks of rows k1 >= 0 and k1 < 0 -> one real (2m, m, in, out, 2) tensor, rows
    0..m-1 then -m..-1."""
    return torch.view_as_real(torch.cat((pos, neg), dim=2).permute(2, 3, 0, 1)).contiguous()


def upgrade_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An FNO state dict in the current layout: checkpoints written before the spectral weights were stored
    mode-major hold complex ``weight_pos`` / ``weight_neg`` (in, out, m, m) per layer; same values, new layout."""
    state = dict(state)
    for key in [k for k in state if k.endswith(".weight_pos")]:
        prefix = key.removesuffix("weight_pos")
        state[prefix + "weight"] = _mode_major(state.pop(key), state.pop(prefix + "weight_neg"))
    return state


def _rows(x_ft: torch.Tensor, m: int) -> torch.Tensor:
    """The kept rows k1 = 0..m-1 then -m..-1 of (B, C, H, m) spectra as (B, C, 2m, m) (contiguous when rows
    are dropped; all rows, as they come, when 2m = H)."""
    h = x_ft.shape[-2]
    return x_ft if h == 2 * m else torch.cat((x_ft[:, :, :m], x_ft[:, :, h - m :]), dim=2)


class FNO(Operator):
    """2D Fourier neural operator: (B, in_channels, R, R) -> (B, out_channels, R, R); features: ``width``."""

    arch = "fno"

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
        self.sizes = {"width": width, "modes": modes}
        self.in_channels = in_channels
        self.n_layers = n_layers
        self.out_channels = out_channels
        self.feature_channels = width
        self.lifting = Pointwise(in_channels, width)
        self.spectral = nn.ModuleList(SpectralConv2d(width, modes) for _ in range(n_layers))
        self.pointwise = nn.ModuleList(Pointwise(width, width) for _ in range(n_layers))
        self.head = nn.Sequential(Pointwise(width, 2 * width), nn.GELU(), Pointwise(2 * width, out_channels))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Map inputs (B, in_channels, H, W) to the head's input (B, width, H, W).

        1. check the channels and that ``modes`` fits the grid;
        2. lift each grid point to ``width`` channels (1x1 conv);
        3. each Fourier layer: spectral conv + pointwise 1x1 conv, summed; GELU except after the last.

        ``forward`` then projects with the head (1x1 conv -> GELU -> 1x1 conv).
        """
        self.check_input(x)
        check_modes(self.modes, x.shape[-2], x.shape[-1])
        x = self.lifting(x)
        for i, (spectral, pointwise) in enumerate(zip(self.spectral, self.pointwise, strict=True)):
            x = spectral(x) + pointwise(x)
            if i < self.n_layers - 1:
                x = F.gelu(x)
        return x
