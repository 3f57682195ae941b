"""Stop 19 probe: does sampling the next cell's data on a helper thread overlap with a block's
EM fit? Times, alternating: the fit of a block (R = 20, n = N) alone, the sampling of one
block of n = N alone, and both at once (sampling on a thread).

Run from the project root: .venv/bin/python experiments/probes/stop19/sample_beside_fit.py N"""

import statistics
import sys
import threading
import time

import jax
from block import contaminated_block

from moestat.experiments import sweep

n = int(sys.argv[1])
setting, built, truth, X, y, w, s0, prog = contaminated_block(n)
keys2 = sweep.replicate_keys(0, setting.name, n, range(20, 40))
jax.block_until_ready(prog(X, y, w, s0, None))


def fit():
    jax.block_until_ready(prog(X, y, w, s0, None))


def sample():
    jax.block_until_ready(sweep.simulate(built, keys2, truth, n)[:2])


def both():
    t = threading.Thread(target=sample)
    t.start()
    fit()
    t.join()


sample()
times = {"fit": [], "sample": [], "both": []}
for _ in range(5):
    for k, f in (("fit", fit), ("sample", sample), ("both", both)):
        t = time.perf_counter()
        f()
        times[k].append(time.perf_counter() - t)
for k, v in times.items():
    print(f"{k:7s} min {min(v):.3f} s median {statistics.median(v):.3f} s")
