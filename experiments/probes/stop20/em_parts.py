"""Stop 20 probe: where a contaminated EM iteration spends its time. Runs the fit program of
one block (20 replicates, n rows, lanes as the sweep) for exactly ITERS iterations (tol 0)
with parts of the M-step replaced by identity:
    full | estep (no M-step) | gate (gate block only) | expert (expert + variance only)
and prints ns per row-iteration (wall / (20 n ITERS)), min of 5 runs.
Run from the project root:
    .venv/bin/python experiments/probes/stop20/em_parts.py N [VARIANT ...]"""

import sys
import time

sys.path.insert(0, "experiments/probes/stop19")
from block import contaminated_block  # noqa: E402

from moestat.fit import api, em  # noqa: E402
from moestat.fit.result import FitOptions  # noqa: E402

ITERS = 7
n = int(sys.argv[1])
variants = sys.argv[2:] or ["full", "estep", "gate", "expert"]
setting, built, truth, X, y, w, s0, _ = contaminated_block(n)
orig_gate, orig_experts = em.update_gate, em.update_experts
for v in variants:
    em.update_gate = orig_gate if v in ("full", "gate") else (
        lambda model, params, *a, **k: params.gate)
    em.update_experts = orig_experts if v in ("full", "expert") else (
        lambda model, params, *a: (params.expert, params.noise))
    api._compiled.cache_clear()
    prog = api._compiled(built.fit_model, "em", FitOptions(max_iter=ITERS, tol=0.0), True)
    r = prog(X, y, w, s0, None)
    r.objective.block_until_ready()
    ts = []
    for _ in range(5):
        t = time.perf_counter()
        prog(X, y, w, s0, None).objective.block_until_ready()
        ts.append(time.perf_counter() - t)
    print(f"n {n} {v:7s} {min(ts) / (20 * n * ITERS) * 1e9:6.1f} ns/row-iter "
          f"(block {min(ts):.3f} s, n_iter {int(r.n_iter.max())})", flush=True)
