"""The one-pass EM (fit/em_stats.py) against the generic EM (fit/em.py) on the EM benchmark's
workload (softmax Gaussian MoE, linear experts, k = 3, d = 1, n = 2e5, 100 iterations), in one
process: ns per point-iteration (best of 3 warm runs) and the largest parameter difference.

Run: .venv/bin/python benchmarks/em_paths.py [n]
"""

from __future__ import annotations

import sys

import jax
import numpy as np

import moestat.fit.em as em_module
from moestat.bench.em_throughput import best_seconds, workload
from moestat.fit import api, fit


def main(n: int = 200_000, iters: int = 100) -> None:
    model, X, y, start, opts = workload(n, iters)
    original, results = em_module.applies, {}
    try:
        for name, one_pass in [("generic", False), ("one-pass", True)]:
            em_module.applies = original if one_pass else (lambda *a: False)
            api._compiled.cache_clear()
            jax.block_until_ready(fit(model, X, y, start, options=opts))  # compile
            seconds, results[name] = best_seconds(lambda: fit(model, X, y, start, options=opts))
            print(f"{name:9s} {seconds / n / iters * 1e9:6.1f} ns per point-iteration")
    finally:
        em_module.applies = original
        api._compiled.cache_clear()
    diff = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) for a, b in zip(
        jax.tree_util.tree_leaves(results["generic"].params),
        jax.tree_util.tree_leaves(results["one-pass"].params), strict=True))
    print(f"largest parameter difference: {diff:.1e}")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:2]))
