"""Stop 19 probe: are the sampler chunk and the near-truth start programs bit-for-bit the same
when compiled with the given XLA options instead of XLA's defaults, for every setting of every
experiments/*.toml; and their compile times.

Run from the project root, e.g.
    .venv/bin/python experiments/probes/stop19/sampler_options.py \
        xla_backend_optimization_level=2
    .venv/bin/python experiments/probes/stop19/sampler_options.py \
        xla_cpu_use_fusion_emitters=false"""

import glob
import sys
import time

import jax
import numpy as np

from moestat.errors import InputError
from moestat.experiments import sweep
from moestat.experiments.config import load_config

opts = {}
for a in sys.argv[1:]:
    k, v = a.split("=")
    opts[k] = {"true": True, "false": False}.get(v, int(v) if v.isdigit() else v)
worst = []
for path in sorted(glob.glob("experiments/*.toml")):
    try:
        cfg = load_config(path)
    except InputError:  # not a sweep config (e.g. the attention experiment)
        continue
    for setting in cfg.settings:
        built = sweep.build(setting)
        text = setting.model_dump_json()
        chunk, start = sweep._simulators(text)
        n = cfg.n_values()[0]
        truth = built.truth(n)
        keys = sweep.replicate_keys(cfg.seed, setting.name, n, range(4))
        kd, ki = sweep._split_keys(keys)
        pairs = [(chunk, (kd, truth, 3))] + ([(start, (ki, truth))] if start else [])
        for fn, args in pairs:
            times = []
            outs = []
            for co in (None, opts):
                f = jax.jit(fn._fun if hasattr(fn, "_fun") else fn.__wrapped__,
                            compiler_options=co)
                t = time.perf_counter()
                c = f.lower(*args).compile()
                times.append(time.perf_counter() - t)
                outs.append(jax.tree_util.tree_leaves(jax.device_get(c(*args))))
            same = all(np.array_equal(a, b, equal_nan=True) for a, b in zip(*outs, strict=True))
            print(f"{path.split('/')[-1][:-5]:36s} {setting.name[:24]:24s} "
                  f"{'chunk' if fn is chunk else 'start'} bitwise equal {same}  compile "
                  f"{times[0]:.2f} -> {times[1]:.2f} s", flush=True)
            worst.append(same)
print("all equal:", all(worst), len(worst), "programs")
