"""Stop 18 probe: simulate() of one block (20 x 1e5) and replicate_keys, wall time.

Run from the project root: .venv/bin/python experiments/probes/stop18/stop18_sim_probe.py"""

import time

import jax

from moestat.experiments import sweep
from moestat.experiments.config import load_config

cfg = load_config("experiments/contaminated_distinguishable.toml")
setting = cfg.settings[0]
built = sweep.build(setting)
n = 100000
truth = built.truth(n)
keys = sweep.replicate_keys(0, setting.name, n, range(20))
for _ in range(4):
    t = time.perf_counter()
    out = jax.block_until_ready(sweep.simulate(built, keys, truth, n))
    print(f"simulate 20x{n}: {time.perf_counter() - t:.3f} s")
t = time.perf_counter()
for _ in range(10):
    keys = sweep.replicate_keys(0, setting.name, n, range(20))
print(f"replicate_keys x10: {time.perf_counter() - t:.3f} s")
