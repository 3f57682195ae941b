"""Stop 20 probe: three forms of the EM E-step, in one process: the fit programs of a
contaminated full preset block (20 replicates, n rows, the sweep's lanes, its options),
alternating ROUNDS runs; seconds min / median, and how far the results differ from the first.
  two exps:      log w + log f, logsumexp, then exp(a - logsumexp)  (stop 19)
  shared:        log w + log f through components.normalize_log (one exp per entry)
  softmax joint: fit/em.py's e_step (softmax logits: components.softmax_joint, one log per
                 sample, the gate weights handed to the Newton step)

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
    return resp, jnp.sum(weights * ll) / jnp.sum(weights), jnp.exp(log_w)


def normalized(model, params, X, y, weights):
    log_w = model.log_gate_weights(params, X)
    resp, ll = components.normalize_log(log_w + model.component_log_density(params, X, y))
    return resp, jnp.sum(weights * ll) / jnp.sum(weights), jnp.exp(log_w)


programs, outs, times = {}, {}, {}
for name, fn in (("two exps", two_exp), ("shared", normalized), ("softmax joint", shared)):
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
a = outs["two exps"]
for name in programs:
    b = outs[name]
    rel = max(float(np.max(np.abs(np.asarray(u) - np.asarray(v))
                           / np.maximum(np.abs(v), 1e-300)))
              for u, v in zip(jax.tree_util.tree_leaves(a.params),
                              jax.tree_util.tree_leaves(b.params), strict=True))
    print(f"n {n} {name:13s} min {min(times[name]) * 1e3:7.1f} ms  median "
          f"{statistics.median(times[name]) * 1e3:7.1f} ms;  n_iter equal "
          f"{bool(np.array_equal(a.n_iter, b.n_iter))}, params within {rel:.1e} relative, "
          f"objective within {float(np.max(np.abs(a.objective - b.objective))):.1e}",
          flush=True)
