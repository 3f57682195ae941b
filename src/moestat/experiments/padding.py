"""Padded sample sizes: several n of a sweep share one compiled fit.

XLA compiles one fit program per array shape, and on the 2-core machine a compile of an EM fit
costs about as much as fitting 2 million rows (1.9 s; stop 17, docs/results.md). A sweep over
20 log-spaced n therefore spent more time compiling than fitting. A cell of size n instead
fits data of `rows >= n` rows, where rows n + 1 .. rows carry sample weight 0 (they change no
sum: the fit is the n-row fit up to rounding), and n values that share `rows` share one
program.

The plan groups the sorted n grid into consecutive runs, each padded to its largest n, and
chooses the groups that minimise

    sum over groups  COMPILE_ROWS + replicates * (number of n in the group) * (largest n)

(exact dynamic programme over the O(len(grid)^2) groupings). Only near-truth settings are
padded: a data-driven random start draws from the rows it is given, so padding would change
which start it draws.
"""

from __future__ import annotations

COMPILE_ROWS = 2_000_000  # one compiled fit ~ EM over this many row-replicates (stop 17:
# 1.9 s to trace and compile the contaminated EM fit, 0.93 us per row-replicate to run it).
# Stop 18's EM is faster (~0.55 us; ~2.3 s to compile): 4e6 would follow, but its plan (3 sizes
# for 1.55x the rows) ran warm 1.1x slower and cold within the noise, so 2e6 stays
# (docs/results.md, "Stop 18: lanes per pass").


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
