"""How a batch of R independent fits (lanes: replicates) runs on the device.

On a GPU all lanes run at once (`jax.vmap`). On the CPU a vmapped fit streams every lane's
(n, .) intermediates through memory on every EM iteration: at n = 1e5 and R = 20 each
(R, n, 10) operand is 160 MB, far beyond the cache, and the fit is memory-bound. `over_lanes`
instead runs the lanes `lax.map`-sequentially in groups of `lanes_per_pass` (vmapped within a
group), so one group's working set stays in the last-level cache. Measured on the 2-core
machine (contaminated EM, R = 20; `benchmarks/em_layout.py`, docs/performance.md): 1.2-1.6x
faster than one vmap over all lanes at the full contaminated preset's padded sizes (n = 8859
to 1e5).

A group keeps at least as many lanes as there are cores (XLA's CPU thread pool splits a
batched operation across its batch axis best) and at most LANE_ROWS rows in all; its size
divides R (no remainder program to compile). The lanes' results are those of the vmapped fit
up to the summation order of the reductions (rounding).
"""

from __future__ import annotations

import os

import jax

LANE_ROWS = 60_000  # rows per group that keep an EM iteration in cache (measured, see above)


def cpu_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def lanes_per_pass(n_lanes: int, n_rows: int, backend: str | None = None) -> int:
    """Lanes fitted together (vmapped) for R = n_lanes fits of n_rows rows each."""
    if (backend or jax.default_backend()) != "cpu":
        return n_lanes
    want = max(cpu_cores(), LANE_ROWS // max(n_rows, 1))
    divisors = [g for g in range(1, n_lanes + 1) if n_lanes % g == 0 and g <= want]
    even = [g for g in divisors if g % cpu_cores() == 0]
    return max(even or divisors)


def over_lanes(fit_one, group: int | None = None):
    """fit_one(X, y, weights, start, bounds) for one lane -> the same over a leading lane
    axis of X (R, n, d), y, weights (R, n) and start (bounds shared); `group` lanes per pass
    (default lanes_per_pass; benchmarks/em_layout.py compares others)."""

    def run(X, y, weights, start, bounds):
        n_lanes, n_rows = X.shape[0], X.shape[1]
        g = lanes_per_pass(n_lanes, n_rows) if group is None else group
        if g >= n_lanes:
            return jax.vmap(fit_one, in_axes=(0, 0, 0, 0, None))(X, y, weights, start, bounds)
        return jax.lax.map(lambda lane: fit_one(*lane, bounds), (X, y, weights, start),
                           batch_size=g)

    return run
