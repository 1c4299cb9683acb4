"""Nested, seeded, disjoint subsets of a file's rows.

One seeded permutation of a file's rows is cut into consecutive regions, one per split the file serves, in
the order test, val, train: each held-out split takes ``floor(fraction * rows)`` rows and train the rest (a
file serving one split gives it every row; where train does not share the file, the last held-out split
takes the rest). A split of n samples is the first n rows of its region, so the regions never overlap
and the n = 64 set is the first 64 samples of the n = 128 one, whatever the other splits ask for.

Drawing n rows costs O(n) whatever the file's size: a file of up to ``LEGACY_ROWS`` rows is cut from numpy's
seeded permutation (what every sweep drew before, so their draws and results stay as they were); a larger one
from a seeded bijection of its rows computed at the n positions only (:func:`shuffled`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import numpy as np

ORDER = ("test", "val", "train")
LEGACY_ROWS = 1 << 24  # up to here the permutation is materialised (128 MB, a fraction of a second)
ROUNDS = 6  # of the Feistel network
MIX = tuple(np.uint64(m) for m in (0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB))


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
    if n_rows <= LEGACY_ROWS:
        return permutation(n_rows, seed)[start:start + n]
    return shuffled(np.arange(start, start + n, dtype=np.uint64), n_rows, seed)


def shuffled(positions: np.ndarray, n_rows: int, seed: int) -> np.ndarray:
    """The rows at ``positions`` of a seeded bijection of ``range(n_rows)``: a balanced Feistel network on the
    fewest even number of bits that hold ``n_rows``, each value walked through it again until it lands in range
    (the network's domain is under 4 n_rows, so a few passes). int64, O(len(positions))."""
    half = np.uint64(max(1, (int(n_rows - 1).bit_length() + 1) // 2))
    mask = (np.uint64(1) << half) - np.uint64(1)
    keys = np.random.default_rng(np.random.SeedSequence([seed, n_rows])).integers(0, 1 << 63, ROUNDS, np.uint64)
    out, todo = positions.astype(np.uint64), np.arange(len(positions))
    while len(todo):
        left, right = out[todo] >> half, out[todo] & mask
        for key in keys:
            left, right = right, left ^ (_mix(right ^ key) & mask)
        out[todo] = (left << half) | right
        todo = todo[out[todo] >= n_rows]
    return out.astype(np.int64)


def _mix(x: np.ndarray) -> np.ndarray:
    """A 64-bit integer hash of each value (splitmix64's finaliser; uint64 arithmetic wraps)."""
    x = (x ^ (x >> np.uint64(30))) * MIX[1]
    x = (x ^ (x >> np.uint64(27))) * MIX[2]
    return (x * MIX[0]) ^ (x >> np.uint64(31))
