"""Stop 20 probe: the sweep's sampler chunk (contaminated preset, 20 x 4096 rows) with JAX's
CPU lowering of threefry (rolled loops) or the unrolled one (JAX's out-of-line GPU rule, or
inline): compile seconds, run ms (min / median of 30 calls) and checksums of one chunk (the
same bits in every variant: the same hash).

Run from the project root, once per variant (a lowering is registered per process):
    .venv/bin/python experiments/probes/stop20/threefry_lowering.py rolled|unrolled|inline"""

import sys
import time
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

variant = sys.argv[1]
if variant in ("unrolled", "inline"):
    from jax._src.random import threefry2x32 as tf
    from jax.interpreters import mlir

    rule = tf._threefry2x32_lowering_rule if variant == "unrolled" else mlir.lower_fun(
        partial(tf._threefry2x32_lowering, use_rolled_loops=False), multiple_results=True)
    mlir.register_lowering(tf.threefry2x32_p, rule, platform="cpu")

from moestat.experiments import sweep  # noqa: E402
from moestat.experiments.config import load_config  # noqa: E402

setting = load_config("experiments/contaminated_distinguishable.toml").settings[0]
built = sweep.build(setting)
truth = built.truth(100000)
keys = sweep.replicate_keys(0, setting.name, 100000, range(20))
sample_chunk, _ = sweep._simulators(built.setting.model_dump_json())
kd, _ = sweep._split_keys(keys)
t = time.perf_counter()
sample_chunk.lower(kd, truth, 0).compile()
compile_s = time.perf_counter() - t
jax.block_until_ready(sample_chunk(kd, truth, 0))
ts = []
for j in range(30):
    t = time.perf_counter()
    jax.block_until_ready(sample_chunk(kd, truth, j))
    ts.append(time.perf_counter() - t)
X, y = sample_chunk(kd, truth, 7)
print(f"{variant:8s} compile {compile_s:.2f} s, run min {min(ts) * 1e3:.1f} ms median "
      f"{np.median(ts) * 1e3:.1f} ms; checksums {float(jnp.sum(X))!r} {float(jnp.sum(y))!r}")
