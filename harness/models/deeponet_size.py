"""The DeepONet's size as small documented functions, torch-free (``harness.models`` registers them as
``deeponet``).

Layout of ``harness.models.deeponet.DeepONet`` (Lu et al. 2021) for gridded inputs, b = ``branch_width``,
t = ``trunk_width``, p = ``basis``, on its sensor grid of R x R points (N = R^2):

- branch (the input function on the sensors -> p coefficients): ``lifting``, a 3x3 conv C -> b (the only
  weights that depend on C), then ``branch``: GELU, K stride-2 3x3 convs b -> b, each with GELU, halving the
  grid (r_k = ceil(r_{k-1} / 2), r_0 = R) until it is at most ``BRANCH_GRID`` points a side (g = r_K),
  flattened, Linear(b g^2 -> p). Convs pad circularly (the fields are periodic). The flattening ties the branch
  to its sensor grid: a DeepONet evaluates on that grid only.
- ``trunk`` (a point -> p basis functions): an MLP on the point's periodic coordinates (cos 2 pi x, sin 2 pi x,
  cos 2 pi y, sin 2 pi y): Linear(4 -> t), GELU, two Linear(t -> t) with GELU, Linear(t -> p), GELU (Lu et
  al. activate the trunk's last layer too). It runs once per batch on the N grid points.
- features: (B, p, R, R), coefficient k times basis function k at each point;
- ``head``: 1x1 conv p -> O, so output o is sum_k W_ok b_k(u) tau_k(x) + beta_o (the DeepONet's inner product,
  a learnt one per output).
"""

from __future__ import annotations

from itertools import pairwise

DEFAULTS = {"branch_width": 64, "trunk_width": 128, "basis": 128}
WIDTH_KEYS = ("branch_width", "trunk_width", "basis")  # what a parameter target scales, together
MEMORY_FIX = "a smaller model.branch_width, model.trunk_width, model.basis (or model.params)"  # holds less
BRANCH_GRID = 4  # the branch halves its grid until it is at most this many points a side
TRUNK_HIDDEN = 3  # Linear layers of width t in the trunk before its last
COORDINATES = 4  # the trunk's input: a point's periodic coordinates


def branch_grids(resolution: int) -> list[int]:
    """The branch's grid sides r_0 = R, r_1, ..., r_K = g: halved (rounding up) until at most ``BRANCH_GRID``."""
    sides = [resolution]
    while sides[-1] > BRANCH_GRID:
        sides.append((sides[-1] + 1) // 2)
    return sides


def count_params(branch_width: int, trunk_width: int, basis: int, resolution: int, in_channels: int,
                 out_channels: int) -> int:
    """Real parameters of ``DeepONet(branch_width, trunk_width, basis, resolution, in_channels, out_channels)``:

        P = 9 C b + b + K (9 b^2 + b) + b g^2 p + p        branch (K halvings to a g x g grid)
          + 4 t + t + 2 (t^2 + t) + t p + p                trunk
          + p O + O                                        head

    It depends on the sensor grid through K and g (defaults at 64 x 64, 7 in, 1 out: K = 4, g = 4; 333,313).
    """
    b, t, p = branch_width, trunk_width, basis
    sides = branch_grids(resolution)
    halvings, g = len(sides) - 1, sides[-1]
    branch = 9 * in_channels * b + b + halvings * (9 * b * b + b) + b * g * g * p + p
    trunk = COORDINATES * t + t + (TRUNK_HIDDEN - 1) * (t * t + t) + t * p + p
    return branch + trunk + p * out_channels + out_channels


def flops_per_sample(branch_width: int, trunk_width: int, basis: int, resolution: int, in_channels: int,
                     out_channels: int, batch: int = 1) -> float:
    """Forward FLOPs of one sample in a batch of ``batch`` (a multiply-add is 2), N = R^2, r_k the branch grids:

        F = 18 N C b + sum_{k=1..K} 18 r_k^2 b^2 + 2 b g^2 p          branch
          + 2 N (4 t + 2 t^2 + t p) / batch                           trunk, once per batch
          + N p                                                       coefficients times basis functions
          + 2 N p O                                                   head

    The product term is elementwise (``FlopCounterMode`` does not see it); biases and GELU are ignored.
    """
    b, t, p, n = branch_width, trunk_width, basis, resolution * resolution
    sides = branch_grids(resolution)
    branch = 18 * n * in_channels * b + sum(18 * r * r * b * b for r in sides[1:]) + 2 * b * sides[-1] ** 2 * p
    trunk = 2 * n * (COORDINATES * t + (TRUNK_HIDDEN - 1) * t * t + t * p)
    return float(branch + trunk / batch + n * p + 2 * n * p * out_channels)


def activation_floats(branch_width: int, trunk_width: int, basis: int, resolution: int, in_channels: int,
                      out_channels: int, batch: int = 1) -> int:
    """Floats a batch's forward pass keeps for the backward, plus the backward's transients (two p N gradients
    per sample). Per sample: each branch conv's padded input and GELU input, the Linear's input (b g^2), the
    features (p N, the head's input). Once per batch: the trunk's Linear inputs (4 N + 3 t N), GELU inputs
    (3 t N + p N) and output (p N)."""
    b, t, p, n = branch_width, trunk_width, basis, resolution * resolution
    sides = branch_grids(resolution)
    per_sample = in_channels * (resolution + 2) ** 2 + b * n + b * sides[-1] ** 2 + p * n + 2 * p * n
    per_sample += sum(b * (outer + 2) ** 2 + b * inner * inner for outer, inner in pairwise(sides))
    trunk = (COORDINATES + 2 * TRUNK_HIDDEN * t + 2 * p) * n
    return batch * per_sample + trunk
