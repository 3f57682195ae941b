"""The one-pass EM (fit/em_statistics.py) against the generic EM (fit/em.py) on the EM benchmark's
workload (softmax Gaussian MoE, linear experts, k = 3, d = 1, n = 2e5, 100 iterations), in one
process: ns per point-iteration (best of 3 warm runs) and the largest parameter difference.

Run: .venv/bin/python benchmarks/em_paths.py [n]
"""

from __future__ import annotations

import dataclasses
import sys

import jax
import numpy as np

from moestat.bench.em_throughput import best_seconds, workload
from moestat.fit import fit


def main(n: int = 200_000, iters: int = 100) -> None:
    model, X, y, start, opts = workload(n, iters)
    results = {}
    for name, path in [("generic", "generic"), ("one-pass", "auto")]:
        options = dataclasses.replace(opts, em_path=path)
        jax.block_until_ready(fit(model, X, y, start, options=options))  # compile
        seconds, results[name] = best_seconds(lambda o=options: fit(model, X, y, start,
                                                                    options=o))
        print(f"{name:9s} {seconds / n / iters * 1e9:6.1f} ns per point-iteration")
    a = jax.tree_util.tree_leaves(results["generic"].params)
    b = jax.tree_util.tree_leaves(results["one-pass"].params)
    print(f"largest parameter difference: "
          f"{max(float(np.max(np.abs(u - v))) for u, v in zip(a, b, strict=True)):.2e}")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:2]))
