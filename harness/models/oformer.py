"""The OFormer (Li, Meidani and Farimani 2023) on patches of the grid, as an ``Operator``.

Layout, parameter, FLOP and memory formulas: ``harness.models.oformer_size``. Features: the cross-attention
decoder's output at every grid point, (B, width, R, R); head: 1x1 conv.
"""

from __future__ import annotations

import torch
from torch import nn

from harness.models import family
from harness.models.oformer_size import COORDINATES, DEFAULTS, MLP_RATIO
from harness.models.operator import Operator, Pointwise, periodic_coordinates


class Attention(nn.Module):
    """Softmax attention of ``heads`` heads, written out so that autograd keeps the probabilities (the memory
    rule counts them): queries (Bq, Nq, d), keys and values from ``context`` (B, Nk, d) -> (B, Nq, d)."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(width, width)
        self.kv = nn.Linear(width, 2 * width)
        self.out = nn.Linear(width, width)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """softmax(q k^T / sqrt(d / h)) v per head, heads joined, projected; Bq is B or 1 (shared queries)."""
        h, dh = self.heads, x.shape[-1] // self.heads
        q = self.q(x).unflatten(-1, (h, dh)).transpose(1, 2) * dh**-0.5  # (Bq, h, Nq, dh)
        k, v = self.kv(context).unflatten(-1, (2, h, dh)).permute(2, 0, 3, 1, 4)  # (B, h, Nk, dh) each
        weights = (q @ k.transpose(-2, -1)).softmax(dim=-1)  # (B, h, Nq, Nk)
        return self.out((weights @ v).transpose(1, 2).flatten(2))


class Block(nn.Module):
    """Pre-norm attention block: x += Attention(LN x, context or LN x); x += MLP(LN x)."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attention = Attention(width, heads)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, MLP_RATIO * width), nn.GELU(), nn.Linear(MLP_RATIO * width, width))

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """Self-attention without ``context``, cross-attention to it with."""
        h = self.norm1(x)
        x = x + self.attention(h, h if context is None else context)
        return x + self.mlp(self.norm2(x))


class OFormer(Operator):
    """OFormer over ``patch`` x ``patch`` tokens: (B, C, R, R) -> (B, O, R, R), R a multiple of ``patch``."""

    arch = "oformer"

    def __init__(self, width: int = DEFAULTS["width"], depth: int = DEFAULTS["depth"], heads: int = DEFAULTS["heads"],
                 patch: int = DEFAULTS["patch"], in_channels: int = 7, out_channels: int = 1) -> None:
        super().__init__()
        self.sizes = family(self.arch).sizes({"width": width, "depth": depth, "heads": heads, "patch": patch})
        self.patch = patch
        self.in_channels, self.out_channels, self.feature_channels = in_channels, out_channels, width
        self.lifting = nn.Linear(in_channels * patch * patch + COORDINATES, width)
        self.layers = nn.ModuleList(Block(width, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.query = nn.Sequential(nn.Linear(COORDINATES, width), nn.GELU(), nn.Linear(width, width))
        self.decoder = Block(width, heads)
        self.head = Pointwise(width, out_channels)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, R, R) -> (B, T, C p^2 + 4): each patch's values, then its centre's periodic coordinates."""
        b, c, rows, cols = x.shape
        p = self.patch
        patches = x.unflatten(2, (rows // p, p)).unflatten(4, (cols // p, p)).permute(0, 2, 4, 1, 3, 5)
        centres = periodic_coordinates(rows // p, cols // p, x.device, offset=(p - 1) / (2 * p)).to(x.dtype)
        return torch.cat([patches.reshape(b, -1, c * p * p), centres.expand(b, -1, -1)], dim=-1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, R, R) -> (B, width, R, R): encode the patches, then decode at every grid point by
        cross-attention from its coordinates (the queries, shared by the batch)."""
        self.check_input(x)
        self.check_grid(self.sizes, x)
        rows, cols = x.shape[-2:]
        tokens = self.lifting(self.tokens(x))
        for layer in self.layers:
            tokens = layer(tokens)
        queries = self.query(periodic_coordinates(rows, cols, x.device).to(x.dtype))[None]  # (1, N, d)
        z = self.decoder(queries, self.norm(tokens))  # (B, N, d)
        return z.transpose(1, 2).unflatten(2, (rows, cols))
