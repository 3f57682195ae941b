"""Padded sample sizes: data of several sizes share one compiled fit.

XLA compiles one fit program per array shape, and on a 2-core machine one compile of an
EM fit costs as much as fitting 1e4 to 2e6 rows, depending on the fit (COMPILE_ROWS). Both the
estimator and the sweeps therefore fit a data set of n rows as `rows >= n` rows, where rows
n + 1 .. rows repeat rows 1, 2, ... cyclically with sample weight 0: they change no sum, so
the fit is the n-row fit up to rounding, and every value the fit touches stays finite (zero
rows would not do: a Laplace expert's majorise-minimise weight 1/|r| at r = 0 is inf, and
0 x inf = NaN).

Which sizes:

* `bucket_size(n)` (the estimator, sizes unknown in advance): 256, 1024 or 4096 rows for
  small tables (a user's first fits share few programs), then the smallest size >= n on a
  geometric grid of ratio 2^(1/4);
* `padded_rows(grid, replicates)` (a sweep, whose n grid is known): the sorted grid grouped
  into consecutive runs, each padded to its largest n, choosing the groups that minimise

      sum over groups  COMPILE_ROWS + replicates * (number of n in the group) * (largest n)

  (an exact dynamic programme over the O(len(grid)^2) groupings).
"""

from __future__ import annotations

import math

import numpy as np

COMPILE_ROWS = 50_000  # one compiled fit ~ this many row-replicates of fitting. Ours, between
# the two kinds of fit measured by benchmarks/padding_tradeoff.py and `moestat bench`: the
# over-specified Laplace EM fit (SQUAREM, 1e-8) runs 1.1-2.0 ms per row-replicate and its
# compile (first call minus second) takes 6-18 s, ~1e4 row-replicates; a contaminated EM fit
# (0.5-0.9 us per row-replicate, 1-2 s to compile) would justify 2e6


def cyclic_index(n, rows: int, xp=np):
    """Row indices 0 .. n-1, then 0, 1, ... again up to `rows` (n may be traced)."""
    return xp.arange(rows) % n


def pad_rows(X, y, weights, size: int):
    """(X, y, weights) of n rows padded cyclically to `size` rows with weight 0."""
    n = X.shape[0]
    if size == n:
        return X, y, weights
    idx = cyclic_index(n, size)
    w = np.zeros(size)
    w[:n] = weights
    return X[idx], y[idx], w


SMALL_BUCKETS = (256, 1024, 4096)  # small tables: fitting costs little next to a compile
FEATURE_WIDTHS = (2, 4, 8, 16)  # a small table's feature count, padded with zero columns


def feature_width(d: int) -> int:
    """The smallest of FEATURE_WIDTHS >= d (d itself above them)."""
    return next((w for w in FEATURE_WIDTHS if d <= w), d)


def pad_features(X, width: int):
    """X (n, d) with width - d zero columns appended."""
    return np.concatenate([X, np.zeros((X.shape[0], width - X.shape[1]))], axis=1)


def bucket_size(n: int) -> int:
    """The smallest of SMALL_BUCKETS >= n, above them the smallest size >= n on a geometric
    grid of ratio 2^(1/4)."""
    for size in SMALL_BUCKETS:
        if n <= size:
            return size
    j = math.ceil(4 * math.log2(n) - 1e-9)
    size = math.ceil(2 ** (j / 4))
    return max(size, n)


def padded_rows(grid: list[int], replicates: int,
                compile_rows: int = COMPILE_ROWS) -> dict[int, int]:
    """{n: rows} for every n of `grid`: the padded size n is fitted at (rows >= n)."""
    ns = sorted(set(int(n) for n in grid))
    best = [0.0] + [float("inf")] * len(ns)  # best[j]: cost of the first j sizes
    cut = [0] * (len(ns) + 1)  # the first index of the last group of best[j]
    for j in range(1, len(ns) + 1):
        for i in range(j):
            cost = best[i] + compile_rows + replicates * (j - i) * ns[j - 1]
            if cost < best[j]:
                best[j], cut[j] = cost, i
    plan, j = {}, len(ns)
    while j > 0:
        i = cut[j]
        plan.update({n: ns[j - 1] for n in ns[i:j]})
        j = i
    return plan
