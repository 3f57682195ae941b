"""Time one block of a sweep with and without splitting off slow replicates (fit_batch).

    python experiments/probes/split_timing.py CONFIG SETTING N FIRST STOP SPLITS

CONFIG names experiments/CONFIG.toml (full preset), replicates FIRST..STOP-1 of cell N;
SPLITS is a comma list of split_after values ("none": one vmapped loop). Each variant runs
twice (the first includes compilation); prints wall times, iterations and objectives.
"""

from __future__ import annotations

import sys
import time

import jax
import numpy as np

from moestat.experiments.runner import resolve
from moestat.experiments.sweep import build, replicate_keys, simulate
from moestat.fit import FitOptions, fit_batch


def main(argv: list[str]) -> None:
    cfgname, setting, n, first, stop, splits = argv
    cfg = resolve(f"experiments/{cfgname}.toml", "full")
    s = next(x for x in cfg.settings if x.name == setting)
    built = build(s)
    n = int(n)
    keys = replicate_keys(cfg.seed, s.name, n, range(int(first), int(stop)))
    X, y, start, _ = simulate(built, keys, built.truth(n), n)
    options = FitOptions(max_iter=s.max_iter, tol=s.tol, expert_bound=s.expert_bound)
    for sp in splits.split(","):
        split_after = None if sp == "none" else int(sp)
        times = []
        for _ in range(2):
            t = time.perf_counter()
            r = fit_batch(built.fit_model, X, y, start, estimator=s.estimator,
                          options=options, split_after=split_after)
            jax.block_until_ready(r)
            times.append(time.perf_counter() - t)
        print(f"split_after={sp}: first {times[0]:.1f} s, again {times[1]:.1f} s; iterations "
              f"{np.asarray(r.n_iter).tolist()}; objectives {np.asarray(r.objective)}")


if __name__ == "__main__":
    main(sys.argv[1:])
