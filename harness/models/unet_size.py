"""The U-Net's size as small documented functions, torch-free (``harness.models`` registers them as ``unet``).

Layout of ``harness.models.unet.UNet`` (Ronneberger et al. 2015, periodic), c = ``channels``, L = ``levels``,
level l on a grid of n_l = R / 2^l points a side (N_l = n_l^2) with c_l = c 2^l channels:

- level 0: DoubleConv(C -> c), its first conv ``lifting`` (the only weights that depend on C), the rest ``inc``;
- ``downs[l - 1]``, l = 1..L: 2x2 max pool, DoubleConv(c_{l-1} -> c_l);
- ``ups[i]``, l = L - i: 2x2 stride-2 transposed conv c_l -> c_{l-1}, concatenated with level l - 1's
  features (the skip), DoubleConv(2 c_{l-1} -> c_{l-1});
- ``head``: 1x1 conv c -> O.

DoubleConv(a -> b): 3x3 conv a -> b, GELU, 3x3 conv b -> b, GELU, both with circular padding (the fields live
on the periodic square, as the FNO's). The grid halves L times, so R must be a multiple of 2^L.
"""

from __future__ import annotations

DEFAULTS = {"channels": 24, "levels": 3}
WIDTH_KEYS = ("channels",)  # what a parameter target scales
MEMORY_FIX = "a smaller model.channels, model.levels (or model.params)"  # what holds less on the device


def _double_conv_params(a: int, b: int) -> int:
    """DoubleConv(a -> b): two 3x3 convs with biases, 9 a b + 9 b^2 + 2 b."""
    return 9 * a * b + 9 * b * b + 2 * b


def count_params(channels: int, levels: int, in_channels: int, out_channels: int) -> int:
    """Real parameters of ``UNet(channels, levels, in_channels, out_channels)``; with DC(a, b) = 9ab + 9b^2 + 2b:

        P = DC(C, c)
          + sum_{l=1..L} [ DC(c_{l-1}, c_l)                  down
                         + 4 c_l c_{l-1} + c_{l-1}           transposed conv
                         + DC(2 c_{l-1}, c_{l-1}) ]          up
          + c O + O                                          head

    Level l holds ~22.25 c^2 4^l, so P ~ 29.7 c^2 4^L (channels 24, levels 3: 1,084,489 for 7 in, 1 out).
    """
    c = [channels << level for level in range(levels + 1)]
    total = _double_conv_params(in_channels, c[0]) + c[0] * out_channels + out_channels
    for level in range(1, levels + 1):
        a, b = c[level - 1], c[level]
        total += _double_conv_params(a, b) + 4 * b * a + a + _double_conv_params(2 * a, a)
    return total


def flops_per_sample(channels: int, levels: int, resolution: int, in_channels: int, out_channels: int,
                     batch: int = 1) -> float:
    """Forward FLOPs of one sample (a multiply-add is 2): a k x k conv a -> b costs 2 k^2 a b per output point,
    a 2x2 stride-2 transposed conv 2 a b per output point, so with N_l = (R / 2^l)^2:

        F = 18 N_0 (C c + c^2)                                                    level 0
          + sum_{l=1..L} [ 18 N_l (c_{l-1} c_l + c_l^2)                           down
                         + 2 N_{l-1} c_l c_{l-1} + 54 N_{l-1} c_{l-1}^2 ]          up
          + 2 N_0 c O                                                             head

    Every level costs about the same, ~ 57 N c^2 (N_l c_l^2 = N c^2). Biases, GELU and pooling are ignored;
    ``batch`` changes nothing (no work is shared by a batch).
    """
    c = [channels << level for level in range(levels + 1)]
    n = [(resolution >> level) ** 2 for level in range(levels + 1)]
    total = 18 * n[0] * (in_channels * c[0] + c[0] ** 2) + 2 * n[0] * c[0] * out_channels
    for level in range(1, levels + 1):
        a, b = c[level - 1], c[level]
        total += 18 * n[level] * (a * b + b * b) + 2 * n[level - 1] * b * a + 54 * n[level - 1] * a * a
    return float(total)


def _double_conv_floats(a: int, b: int, side: int) -> int:
    """What a DoubleConv(a -> b) on a side x side grid keeps for the backward: each conv its padded input,
    each GELU its input."""
    padded = (side + 2) ** 2
    return a * padded + b * side * side + b * padded + b * side * side


def activation_floats(channels: int, levels: int, resolution: int, in_channels: int, out_channels: int,
                      batch: int = 1) -> int:
    """Floats a batch's forward pass keeps for the backward (autograd's saved tensors), plus the backward's
    transients, taken as two gradients of the widest full-grid tensor (2 x 2c N per sample).

    Saved: each DoubleConv's padded inputs and GELU inputs, each max pool's input and int64 indices (2 floats
    each), each transposed conv's input, the head's input (c N). See ``_double_conv_floats``.
    """
    c = [channels << level for level in range(levels + 1)]
    side = [resolution >> level for level in range(levels + 1)]
    total = _double_conv_floats(in_channels, c[0], side[0]) + c[0] * side[0] ** 2
    for level in range(1, levels + 1):
        a, b, outer, inner = c[level - 1], c[level], side[level - 1], side[level]
        total += a * outer**2 + 2 * a * inner**2 + _double_conv_floats(a, b, inner)  # pool, down
        total += b * inner**2 + _double_conv_floats(2 * a, a, outer)  # transposed conv, up
    transients = 2 * 2 * c[0] * resolution**2
    return batch * (total + transients)


def check_grid(channels: int, levels: int, resolution: int) -> tuple[str, str] | None:
    """(key, what must hold and the fix) unless the grid halves ``levels`` times, else None."""
    if resolution % (1 << levels) == 0:
        return None
    fits = (resolution & -resolution).bit_length() - 1  # how often the grid halves
    fewer = f"model.levels <= {fits} or " if fits else ""
    return "levels", (f"model.levels={levels} halves the grid {levels} times, so the resolution must be a multiple "
                      f"of {1 << levels}, but it is {resolution}: use {fewer}a resolution that is a multiple of "
                      f"{1 << levels}")
