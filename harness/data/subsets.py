"""Nested, seeded, disjoint subsets of a file's rows.

One seeded permutation of a file's rows is cut into consecutive regions, one per split the file serves, in
the order test, val, train: each held-out split takes ``floor(fraction * rows)`` rows and train the rest (a
file serving one split gives it every row; where train does not share the file, the last held-out split
takes the rest). A split of n samples is the first n rows of its region, so the regions never overlap
and the n = 64 set is the first 64 samples of the n = 128 one, whatever the other splits ask for.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import numpy as np

ORDER = ("test", "val", "train")


def regions(n_rows: int, splits: Collection[str], fractions: Mapping[str, float]) -> dict[str, tuple[int, int]]:
    """``{split: (start, stop)}`` in the permutation of ``n_rows`` rows for the ``splits`` one file serves."""
    served = [s for s in ORDER if s in splits]
    out, start = {}, 0
    for i, split in enumerate(served):
        stop = n_rows if i == len(served) - 1 else start + int(fractions[split] * n_rows)
        out[split] = (start, stop)
        start = stop
    return out


def permutation(n_rows: int, seed: int) -> np.ndarray:
    """The seeded permutation of ``range(n_rows)`` that the regions cut (int64)."""
    return np.random.default_rng(np.random.SeedSequence([seed, n_rows])).permutation(n_rows)


def draw(n_rows: int, region: tuple[int, int], n: int, seed: int) -> np.ndarray:
    """The file rows of an n-sample split: the first ``n`` rows of its ``region`` of the permutation."""
    start, stop = region
    if n > stop - start:
        raise ValueError(f"{n} rows asked of a region of {stop - start}")
    return permutation(n_rows, seed)[start:start + n]
