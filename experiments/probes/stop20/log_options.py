"""Stop 20 probe: float64 log and log1p on 2e6 values under XLA CPU options (loop emitters,
platform-dependent math, vector width 256): ns per value (min of 7) and whether the bits equal
the defaults'.

Run: .venv/bin/python experiments/probes/stop20/log_options.py"""

import time

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)
x = jnp.asarray(np.random.default_rng(0).random(2_000_000) + 0.1)
LOOP = {"xla_cpu_use_fusion_emitters": False}
PDM = {"xla_cpu_enable_platform_dependent_math": True}
VW = {"xla_cpu_prefer_vector_width": 256}
variants = {"default": None, "loop": LOOP, "pdm": PDM, "loop+pdm": {**LOOP, **PDM},
            "vw256": VW, "loop+vw256": {**LOOP, **VW}}
ref = {}
for name, co in variants.items():
    out = []
    for fname, f in (("log", jnp.log), ("log1p", jnp.log1p)):
        g = jax.jit(f, compiler_options=co).lower(x).compile()
        r = g(x).block_until_ready()
        ts = []
        for _ in range(7):
            t = time.perf_counter()
            g(x).block_until_ready()
            ts.append(time.perf_counter() - t)
        same = np.array_equal(np.asarray(r), ref.setdefault(fname, np.asarray(r)))
        out.append(f"{fname} {min(ts) / x.size * 1e9:.2f} ns same={same}")
    print(f"{name:12s}", " | ".join(out))
