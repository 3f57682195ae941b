"""Stop 18 probe: lower / compile / run of the fit program at n = argv[1] (set XLA_FLAGS to
compare compile flags).

Run from the project root: .venv/bin/python experiments/probes/stop18/stop18_fit_opts.py"""

import dataclasses
import sys
import time

import jax
import jax.numpy as jnp

from moestat.experiments import sweep
from moestat.experiments.config import load_config
from moestat.fit import api

cfg = load_config("experiments/contaminated_distinguishable.toml")
setting = cfg.settings[0]
built = sweep.build(setting)
opts = dataclasses.replace(sweep.fit_options(setting), max_iter=sweep.SPLIT_AFTER)
n = int(sys.argv[1])
truth = built.truth(n)
keys = sweep.replicate_keys(0, setting.name, n, range(20))
X, y, start, ki = sweep.simulate(built, keys, truth, n)
w = jnp.ones(y.shape)
for co in [None, None]:
    api._compiled.cache_clear()
    fn = api._compiled(built.fit_model, "em", opts, True)
    t = time.perf_counter()
    low = fn.lower(X, y, w, start, None)
    tl = time.perf_counter() - t
    t = time.perf_counter()
    comp = low.compile(compiler_options=co) if co else low.compile()
    tc = time.perf_counter() - t
    ts = []
    for _ in range(5):
        t = time.perf_counter()
        r = jax.block_until_ready(comp(X, y, w, start, None))
        ts.append(time.perf_counter() - t)
    print(
        f"{co}: lower {tl:.2f} compile {tc:.2f} run min {min(ts):.3f} "
        f"obj {float(r.objective.sum()):.12f}",
        flush=True,
    )
