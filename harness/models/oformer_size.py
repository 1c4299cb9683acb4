"""The OFormer's size as small documented functions, torch-free (``harness.models`` registers them as
``oformer``).

Layout of ``harness.models.oformer.OFormer`` (Li, Meidani and Farimani 2023, "Transformer for partial
differential equations' operator learning"), d = ``width``, L = ``depth``, h = ``heads``, p = ``patch``, M =
``MLP_RATIO``; on an R x R grid (N = R^2 points) cut into T = (R / p)^2 patches:

- encoder: each p x p patch is a token, its C p^2 values and its centre's periodic coordinates (cos 2 pi x,
  sin 2 pi x, cos 2 pi y, sin 2 pi y) -> ``lifting``, Linear(C p^2 + 4 -> d) (the only weights that depend on
  C); ``layers``: L pre-norm transformer layers, x += Attention(LN x), x += MLP(LN x), MLP = Linear(d -> M d),
  GELU, Linear(M d -> d); ``norm``: a LayerNorm.
- decoder: every grid point is a query, its periodic coordinates -> ``query`` MLP Linear(4 -> d), GELU,
  Linear(d -> d) (once per batch); one pre-norm cross-attention block (``decoder``): z = q + Attention(LN q,
  tokens), z += MLP(LN z); features (B, d, R, R).
- ``head``: 1x1 conv d -> O.

Attention is softmax attention over h heads of d / h channels, written out (scores, softmax, weighted sum) so
that its T^2 (encoder) and N T (decoder) probabilities are what autograd keeps: they are the quadratic term of
its memory. Li et al.'s encoder uses linear (Galerkin) attention on every grid point; patches keep softmax
attention affordable instead.
"""

from __future__ import annotations

DEFAULTS = {"width": 128, "depth": 4, "heads": 4, "patch": 4}
WIDTH_KEYS = ("width",)  # what a parameter target scales
# what holds less on the device: attention's probabilities grow with the square of the tokens, (R / patch)^2
MEMORY_FIX = "a smaller model.width, model.depth (or model.params), a larger model.patch (fewer tokens)"
MLP_RATIO = 2
COORDINATES = 4  # a token's or query's periodic coordinates


def _block_params(d: int) -> int:
    """One pre-norm attention block: two LayerNorms (4 d), q, k, v, out projections (4 d^2 + 4 d), the MLP
    (2 M d^2 + M d + d)."""
    return 4 * d + 4 * d * d + 4 * d + 2 * MLP_RATIO * d * d + MLP_RATIO * d + d


def count_params(width: int, depth: int, heads: int, patch: int, in_channels: int, out_channels: int) -> int:
    """Real parameters of ``OFormer(width, depth, heads, patch, in_channels, out_channels)``:

        P = (C p^2 + 4) d + d                        lifting (patch embedding)
          + (L + 1) [(4 + 2M) d^2 + (9 + M) d]       L encoder layers and the decoder's block
          + 2 d + d^2 + 6 d                          encoder norm, query MLP
          + d O + O                                  head

    With M = 2: P ~ 8 (L + 1) d^2 (the defaults, 7 in, 1 out: 694,913). Heads do not change it.
    """
    d = width
    lifting = (in_channels * patch * patch + COORDINATES) * d + d
    query = COORDINATES * d + d + d * d + d
    return lifting + (depth + 1) * _block_params(d) + 2 * d + query + d * out_channels + out_channels


def tokens(resolution: int, patch: int) -> int:
    """T: the patches of a resolution x resolution grid."""
    return (resolution // patch) ** 2


def flops_per_sample(width: int, depth: int, heads: int, patch: int, resolution: int, in_channels: int,
                     out_channels: int, batch: int = 1) -> float:
    """Forward FLOPs of one sample in a batch of ``batch`` (a multiply-add is 2), N = R^2 points, T tokens:

        F = 2 T (C p^2 + 4) d                                        lifting
          + L [(8 + 4M) T d^2 + 4 T^2 d]                             encoder layers (4 T^2 d: scores, sum)
          + 2 N (4 d + 2 d^2) / batch                                query MLP and projection, once per batch
          + 4 T d^2 + 4 N T d + 2 N d^2 + 4 M N d^2                  cross-attention block
          + 2 N d O                                                  head

    Biases, LayerNorms, GELU and softmax are ignored.
    """
    d, n, t = width, resolution * resolution, tokens(resolution, patch)
    lifting = 2 * t * (in_channels * patch * patch + COORDINATES) * d
    encoder = depth * ((8 + 4 * MLP_RATIO) * t * d * d + 4 * t * t * d)
    queries = 2 * n * (COORDINATES * d + 2 * d * d)
    decoder = 4 * t * d * d + 4 * n * t * d + 2 * n * d * d + 4 * MLP_RATIO * n * d * d
    return float(lifting + encoder + queries / batch + decoder + 2 * n * d * out_channels)


def activation_floats(width: int, depth: int, heads: int, patch: int, resolution: int, in_channels: int,
                      out_channels: int, batch: int = 1) -> int:
    """Floats a batch's forward pass keeps for the backward, plus the backward's transients (an upper bound).

    Per sample: the patches (C N); each encoder layer (2 M + 10) T d + h T^2 (LayerNorm and projection inputs,
    q, k, v, the attention's output, the MLP's hidden layer twice; the softmax's probabilities h T^2: the
    quadratic term); the decoder (2 M + 8) N d + 3 T d + h N T (its probabilities); the features (N d); as
    transients two gradients of the largest of them, 2 max(h N T, M N d). Once per batch: the queries, 4 N d.
    """
    d, n, t, m = width, resolution * resolution, tokens(resolution, patch), MLP_RATIO
    encoder = depth * ((2 * m + 10) * t * d + heads * t * t)
    decoder = (2 * m + 8) * n * d + 3 * t * d + heads * n * t
    transients = 2 * max(heads * n * t, m * n * d)
    return batch * (in_channels * n + encoder + decoder + n * d + transients) + 4 * n * d


def check_sizes(width: int, depth: int, heads: int, patch: int) -> tuple[str, str] | None:
    """(key, what must hold and the fix) for sizes no OFormer has, else None."""
    if width % heads:
        return "heads", (f"model.heads={heads} must divide model.width={width} (each head gets width / heads "
                         f"channels): use model.heads {max(h for h in (1, 2, 4, 8) if width % h == 0)} or a "
                         f"model.width that is a multiple of {heads}")
    return None


def check_grid(width: int, depth: int, heads: int, patch: int, resolution: int) -> tuple[str, str] | None:
    """(key, what must hold and the fix) unless ``patch`` tiles the grid, else None."""
    if resolution % patch == 0:
        return None
    divisors = [q for q in (1, 2, 4, 8, 16) if resolution % q == 0 and q <= patch]
    return "patch", (f"model.patch={patch} must divide the resolution {resolution} (patches tile the grid): use "
                     f"model.patch {divisors[-1]} or a resolution that is a multiple of {patch}")
