"""Stop 19 probe: isolated lower / compile times of the contaminated full preset's sampler
chunk, near-truth start and fit programs (block 20), optionally with per-compile XLA options
(none given: XLA's defaults, not moestat.compiling's).

Run from the project root (fresh process per option set, no persistent cache):
    .venv/bin/python experiments/probes/stop19/compile_parts.py [xla_option=value ...]"""

import sys
import time

import jax
import jax.numpy as jnp

from moestat.experiments import sweep
from moestat.experiments.config import load_config
from moestat.fit import api

options = {}
for a in sys.argv[1:]:
    k, v = a.split("=")
    options[k] = {"true": True, "false": False}.get(v, int(v) if v.isdigit() else v)
cfg = load_config("experiments/contaminated_distinguishable.toml")
setting = cfg.settings[0]
built = sweep.build(setting)
text = setting.model_dump_json()
chunk, start = sweep._simulators(text)
R, n = 20, 8859
truth = built.truth(n)
keys = sweep.replicate_keys(0, setting.name, n, range(R))
kd, ki = sweep._split_keys(keys)


def timed(name, fn, *args):
    t = time.perf_counter()
    low = jax.jit(fn._fun, compiler_options=options or None).lower(*args)
    tl = time.perf_counter() - t
    t = time.perf_counter()
    comp = low.compile()
    tc = time.perf_counter() - t
    jax.block_until_ready(comp(*args))
    t = time.perf_counter()
    for _ in range(3):
        out = jax.block_until_ready(comp(*args))
    tr = (time.perf_counter() - t) / 3
    print(f"{name:6s} lower {tl:.2f} s compile {tc:.2f} s run {tr * 1e3:.1f} ms", flush=True)
    return out


timed("chunk", chunk, kd, truth, 0)
s0 = timed("start", start, ki, truth)
X, y, _, _ = sweep.simulate(built, keys, truth, n)
opts = sweep.fit_options(setting)
prog = api.first_stage(built.fit_model, setting.estimator, opts, sweep.SPLIT_AFTER)
timed("fit", prog, X, y, jnp.ones(y.shape), s0, None)
