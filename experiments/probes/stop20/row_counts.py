"""Stop 20 probe: seconds per row-iteration of the contaminated fit program (block 20, the
sweep's lanes and options) at nearby row counts, in one process, alternating ROUNDS runs
(min): is there a row count the EM is slow at?

Run from the project root:
    .venv/bin/python experiments/probes/stop20/row_counts.py ROUNDS N [N ...]"""

import sys
import time

import jax
import numpy as np

sys.path.insert(0, "experiments/probes/stop19")
from block import contaminated_block  # noqa: E402

rounds = int(sys.argv[1])
sizes = [int(a) for a in sys.argv[2:]]
cases = {}
for n in sizes:
    setting, built, truth, X, y, w, s0, prog = contaminated_block(n)
    compiled = prog.lower(X, y, w, s0, None).compile()
    r = jax.block_until_ready(compiled(X, y, w, s0, None))
    cases[n] = (compiled, (X, y, w, s0, None), int(np.asarray(r.n_iter).max()), [])
for _ in range(rounds):
    for compiled, args, _, times in cases.values():
        t = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        times.append(time.perf_counter() - t)
for n, (_, _, iters, times) in cases.items():
    print(f"n {n:6d}: {min(times):.3f} s per block, {min(times) / (20 * n * iters) * 1e9:.1f} "
          f"ns per row-iteration (max n_iter {iters})", flush=True)
