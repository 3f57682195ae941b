"""Stop 19 probe: the contaminated full preset's sampler chunk (20 replicates x 4096 rows)
compiled with XLA's defaults, at backend optimisation level 2, and with the older CPU loop
emitters: compile time, run time (alternating; min and median of 30 calls) and bitwise
equality with the default.

Run from the project root: .venv/bin/python experiments/probes/stop19/sampler_variants.py"""

import statistics
import time

import jax
import numpy as np

from moestat.experiments import sweep
from moestat.experiments.config import load_config

cfg = load_config("experiments/contaminated_distinguishable.toml")
setting = cfg.settings[0]
built = sweep.build(setting)
chunk, _ = sweep._simulators(setting.model_dump_json())
truth = built.truth(1000)
kd, _ = sweep._split_keys(sweep.replicate_keys(0, setting.name, 1000, range(20)))
variants = {"default": None, "level2": {"xla_backend_optimization_level": 2},
            "legacy": {"xla_cpu_use_fusion_emitters": False}}
comp, out, times = {}, {}, {k: [] for k in variants}
for name, co in variants.items():
    t = time.perf_counter()
    comp[name] = jax.jit(chunk._fun, compiler_options=co).lower(kd, truth, 0).compile()
    print(f"{name:8s} compile {time.perf_counter() - t:.2f} s", flush=True)
    out[name] = jax.device_get(comp[name](kd, truth, 0))
for j in range(30):
    for name in variants:
        t = time.perf_counter()
        jax.block_until_ready(comp[name](kd, truth, j))
        times[name].append(time.perf_counter() - t)
for name in variants:
    same = all(np.array_equal(a, b) for a, b in zip(out[name], out["default"], strict=True))
    print(f"{name:8s} run min {min(times[name]) * 1e3:.1f} ms median "
          f"{statistics.median(times[name]) * 1e3:.1f} ms, bitwise equal to default: {same}")
