"""Stop 20 probe: the contaminated full preset's fit program (block 20) compiled with the
"fit" profile (loop emitters) alone and together with xla_backend_optimization_level=2:
compile time, run time (alternating, min and median of ROUNDS), and whether the results are
bit-for-bit equal.

Run from the project root:
    .venv/bin/python experiments/probes/stop20/fit_levels.py N [ROUNDS]"""

import statistics
import sys
import time

import jax
import numpy as np
from ab import alternate

sys.path.insert(0, "experiments/probes/stop19")
from block import contaminated_block  # noqa: E402

n = int(sys.argv[1])
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
setting, built, truth, X, y, w, s0, prog = contaminated_block(n)
args = (X, y, w, s0, None)
loop = {"xla_cpu_use_fusion_emitters": False}
variants = {"fit": loop, "fit+level2": {**loop, "xla_backend_optimization_level": 2}}
compiled = {}
for name, co in variants.items():
    low = jax.jit(prog._fun, compiler_options=co).lower(*args)
    t = time.perf_counter()
    compiled[name] = low.compile()
    print(f"{name:11s} compile {time.perf_counter() - t:.2f} s", flush=True)
outs, times = alternate(compiled, args, rounds)
for name in variants:
    print(f"{name:11s} run min {min(times[name]) * 1e3:.1f} ms median "
          f"{statistics.median(times[name]) * 1e3:.1f} ms", flush=True)
a, b = (jax.tree_util.tree_leaves(outs[k]) for k in variants)
print("bit-for-bit equal:", all(np.array_equal(u, v, equal_nan=True)
                                for u, v in zip(a, b, strict=True)))
