"""Stop 18 probe: one block (20 x n, default n = 1e5) of the contaminated fit program: compile
and warm run times.

Run from the project root: .venv/bin/python experiments/probes/stop18/stop18_run_probe.py"""

import dataclasses
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from moestat.experiments import sweep
from moestat.experiments.config import load_config
from moestat.fit import api

cfg = load_config("experiments/contaminated_distinguishable.toml")
setting = cfg.settings[0]
built = sweep.build(setting)
opts = dataclasses.replace(sweep.fit_options(setting), max_iter=sweep.SPLIT_AFTER)
n = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
truth = built.truth(n)
keys = sweep.replicate_keys(0, setting.name, n, range(20))
X, y, start, ki = sweep.simulate(built, keys, truth, n)
w = jnp.ones(y.shape)
fn = api._compiled(built.fit_model, "em", opts, True)
t = time.perf_counter()
comp = fn.lower(X, y, w, start, None).compile()
tc = time.perf_counter() - t
ts = []
for _ in range(4):
    t = time.perf_counter()
    r = jax.block_until_ready(comp(X, y, w, start, None))
    ts.append(time.perf_counter() - t)
print(
    f"compile {tc:.2f} run min {min(ts):.3f} all {np.round(ts, 3)} "
    f"iters {np.asarray(r.n_iter).max()} obj {float(r.objective.sum()):.12f}"
)
