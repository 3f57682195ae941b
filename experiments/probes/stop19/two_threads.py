"""Stop 19 probe: a block of 20 contaminated fits as one program (R = 20) against two halves
(R = 10 each) run at once on two Python threads, or dispatched back to back without threads.
Alternating, min and median of ROUNDS; rows compared.

Run from the project root: .venv/bin/python experiments/probes/stop19/two_threads.py N [ROUNDS]"""

import statistics
import sys
import threading
import time

import jax
import numpy as np
from block import contaminated_block

n = int(sys.argv[1])
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
setting, built, truth, X, y, w, s0, prog = contaminated_block(n)


def half(a, i):
    return jax.tree_util.tree_map(lambda v: v[10 * i: 10 * (i + 1)], a)


halves = [(half(X, i), half(y, i), half(w, i), half(s0, i)) for i in range(2)]
jax.block_until_ready(prog(X, y, w, s0, None))
jax.block_until_ready([prog(*h, None) for h in halves])


def one():
    return jax.block_until_ready(prog(X, y, w, s0, None))


def threads():
    out = [None, None]

    def run(i):
        out[i] = jax.block_until_ready(prog(*halves[i], None))

    ts = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


def dispatched():
    return jax.block_until_ready([prog(*h, None) for h in halves])


times = {"one program": [], "two threads": [], "back to back": []}
fns = {"one program": one, "two threads": threads, "back to back": dispatched}
for _ in range(rounds):
    for k, f in fns.items():
        t = time.perf_counter()
        r = f()
        times[k].append(time.perf_counter() - t)
        if k == "one program":
            ref = r
        elif k == "two threads":
            two = r
for k, v in times.items():
    print(f"{k:13s} min {min(v):.3f} s median {statistics.median(v):.3f} s")
obj = np.concatenate([np.asarray(two[0].objective), np.asarray(two[1].objective)])
print("objective largest relative difference",
      float(np.max(np.abs(obj - np.asarray(ref.objective)) / np.abs(ref.objective))),
      "n_iter equal", bool(np.array_equal(
          np.concatenate([two[0].n_iter, two[1].n_iter]), ref.n_iter)))
