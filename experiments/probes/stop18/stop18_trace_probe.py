"""Stop 18 probe: jax.profiler trace of one block at n = 1e5 (then stop18_trace_sum.py).

Run from the project root: .venv/bin/python experiments/probes/stop18/stop18_trace_probe.py"""

import dataclasses

import jax
import jax.numpy as jnp

from moestat.experiments import sweep
from moestat.experiments.config import load_config
from moestat.fit import api

cfg = load_config("experiments/contaminated_distinguishable.toml")
setting = cfg.settings[0]
built = sweep.build(setting)
opts = dataclasses.replace(sweep.fit_options(setting), max_iter=sweep.SPLIT_AFTER)
n = 100000
truth = built.truth(n)
keys = sweep.replicate_keys(0, setting.name, n, range(20))
X, y, start, ki = sweep.simulate(built, keys, truth, n)
w = jnp.ones(y.shape)
fn = api._compiled(built.fit_model, "em", opts, True)
comp = fn.lower(X, y, w, start, None).compile()
jax.block_until_ready(comp(X, y, w, start, None))
with jax.profiler.trace("/tmp/s18/trace", create_perfetto_trace=True):
    jax.block_until_ready(comp(X, y, w, start, None))
open("/tmp/s18/hlo.txt", "w").write(comp.as_text())
