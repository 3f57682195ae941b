"""Stop 19 probe: the contaminated full preset's fit program (block 20) compiled with XLA's
default CPU fusion emitters and with `xla_cpu_use_fusion_emitters=False` (the older loop
emitters): compile time, run time (alternating, min and median of ROUNDS) and how far the
results differ.

Run from the project root:
    .venv/bin/python experiments/probes/stop19/fit_emitters.py N [ROUNDS]"""

import statistics
import sys
import time

import jax
import numpy as np
from block import contaminated_block

from moestat.experiments import sweep

n = int(sys.argv[1])
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
setting, built, truth, X, y, w, s0, prog = contaminated_block(n)
variants = {"default": None, "legacy": {"xla_cpu_use_fusion_emitters": False}}
compiled, outs, times = {}, {}, {k: [] for k in variants}
for name, co in variants.items():
    low = jax.jit(prog._fun, compiler_options=co).lower(X, y, w, s0, None)
    t = time.perf_counter()
    compiled[name] = low.compile()
    print(f"{name:8s} compile {time.perf_counter() - t:.2f} s", flush=True)
    outs[name] = jax.block_until_ready(compiled[name](X, y, w, s0, None))
for _ in range(rounds):
    for name in variants:
        t = time.perf_counter()
        jax.block_until_ready(compiled[name](X, y, w, s0, None))
        times[name].append(time.perf_counter() - t)
for name in variants:
    print(f"{name:8s} run min {min(times[name]) * 1e3:.1f} ms median "
          f"{statistics.median(times[name]) * 1e3:.1f} ms", flush=True)
a, b = outs["default"], outs["legacy"]
print("n_iter equal:", bool(np.array_equal(a.n_iter, b.n_iter)),
      " flags equal:", all(bool(np.array_equal(getattr(a, f), getattr(b, f)))
                           for f in sweep.FLAGS))
rel = max(float(np.max(np.abs(np.asarray(u) - np.asarray(v)) / np.maximum(np.abs(v), 1e-300)))
          for u, v in zip(jax.tree_util.tree_leaves(a.params), jax.tree_util.tree_leaves(b.params),
                          strict=True))
print(f"params largest relative difference {rel:.2e}; objective "
      f"{float(np.max(np.abs(a.objective - b.objective))):.2e}")
