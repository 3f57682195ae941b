"""The one-pass EM (fit/em_stats.py) against the generic EM (fit/em.py) on the EM benchmark's
workload (softmax Gaussian MoE, linear experts, k = 3, d = 1, n = 2e5, 100 iterations), in one
process: ns per point-iteration (best of 3 warm runs) and the largest parameter difference.

Run: .venv/bin/python benchmarks/em_paths.py [n]
"""

from __future__ import annotations

import sys
import time

import jax
import numpy as np

import moestat.fit.em as em_module
from moestat import MixtureOfExperts
from moestat.bench.em_throughput import TRUTH
from moestat.fit import FitOptions, api, fit, near_truth


def main(n: int = 200_000, iters: int = 100) -> None:
    model = MixtureOfExperts.create("softmax", "linear", "gaussian", n_experts=3, n_features=1)
    truth = model.from_named(TRUTH)
    X = jax.random.uniform(jax.random.PRNGKey(0), (n, 1), minval=-1, maxval=1)
    y = model.sample(jax.random.PRNGKey(1), truth, X)
    start = near_truth(model, truth, jax.random.PRNGKey(2), 0.1)
    opts = FitOptions(max_iter=iters, tol=-1.0)
    original, results = em_module.applies, {}
    try:
        for name, one_pass in [("generic", False), ("one-pass", True)]:
            em_module.applies = original if one_pass else (lambda *a: False)
            api._compiled.cache_clear()
            jax.block_until_ready(fit(model, X, y, start, options=opts))
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                results[name] = jax.block_until_ready(fit(model, X, y, start, options=opts))
                times.append(time.perf_counter() - t0)
            print(f"{name:9s} {min(times) / n / iters * 1e9:6.1f} ns per point-iteration")
    finally:
        em_module.applies = original
        api._compiled.cache_clear()
    diff = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) for a, b in zip(
        jax.tree_util.tree_leaves(results["generic"].params),
        jax.tree_util.tree_leaves(results["one-pass"].params), strict=True))
    print(f"largest parameter difference: {diff:.1e}")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:2]))
