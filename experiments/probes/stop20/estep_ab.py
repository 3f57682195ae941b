"""Stop 20 probe: the E-step's responsibilities from shared exponentials
(components.normalize_log: exp(a - m) / sum, one exp per entry) against the two-exp form
(logsumexp, then exp(a - logsumexp)), in one process: both fit programs of a contaminated full
preset block (20 replicates, n rows, the sweep's lanes, its options), alternating ROUNDS runs;
seconds min / median, and how far the results differ. (A third form, the E-step from the
softmax gate's logits with one log per sample, was measured with this probe's version at
commit d49e552, where it was fit/em.py's e_step; not kept.)

Run from the project root:
    .venv/bin/python experiments/probes/stop20/estep_ab.py N [ROUNDS]"""

import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from moestat import components
from moestat.fit import api, em

sys.path.insert(0, "experiments/probes/stop19")
from block import contaminated_block  # noqa: E402

n = int(sys.argv[1])
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 10
setting, built, truth, X, y, w, s0, _ = contaminated_block(n)
shared = em.e_step


def two_exp(model, params, X, y, weights):
    log_w = model.log_gate_weights(params, X)
    log_joint = log_w + model.component_log_density(params, X, y)
    ll = components.logsumexp(log_joint)
    resp = jnp.exp(log_joint - ll[:, None])
    return resp, jnp.sum(weights * ll) / jnp.sum(weights), log_w


programs, outs, times = {}, {}, {}
for name, fn in (("two exps", two_exp), ("shared", shared)):
    em.e_step = fn
    api._compiled.cache_clear()
    prog = api.first_stage(built.fit_model, "em", api.FitOptions(max_iter=setting.max_iter,
                                                                 tol=setting.tol), 50)
    programs[name] = prog.lower(X, y, w, s0, None).compile()
    outs[name] = jax.block_until_ready(programs[name](X, y, w, s0, None))
    times[name] = []
em.e_step = shared
for _ in range(rounds):
    for name, prog in programs.items():
        t = time.perf_counter()
        jax.block_until_ready(prog(X, y, w, s0, None))
        times[name].append(time.perf_counter() - t)
for name in programs:
    print(f"n {n} {name:8s} min {min(times[name]) * 1e3:7.1f} ms  median "
          f"{statistics.median(times[name]) * 1e3:7.1f} ms", flush=True)
a, b = outs["two exps"], outs["shared"]
rel = max(float(np.max(np.abs(np.asarray(u) - np.asarray(v)) / np.maximum(np.abs(v), 1e-300)))
          for u, v in zip(jax.tree_util.tree_leaves(a.params),
                          jax.tree_util.tree_leaves(b.params), strict=True))
print(f"n_iter equal {bool(np.array_equal(a.n_iter, b.n_iter))}; params largest relative "
      f"difference {rel:.1e}; objective {float(np.max(np.abs(a.objective - b.objective))):.1e}")
