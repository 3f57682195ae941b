"""Shared harness of the stop 20 A/B probes: fit programs of one contaminated full-preset block
built with a part of the fit swapped, run alternately in one process.

    programs = fit_variants(module, attr, {name: fn}, built, setting, args)
    outs, times = alternate(programs, args, rounds)
    report(n, outs, times, reference_name)"""

import statistics
import time

import jax
import numpy as np

from moestat.fit import api


def fit_variants(module, attr, variants: dict, built, setting, args) -> dict:
    """{name: compiled fit program (api.first_stage, split after 50)} with module.attr replaced
    by each variant while tracing; module.attr is restored afterwards."""
    original = getattr(module, attr)
    programs = {}
    try:
        for name, fn in variants.items():
            setattr(module, attr, fn)
            api._compiled.cache_clear()
            prog = api.first_stage(built.fit_model, "em",
                                   api.FitOptions(max_iter=setting.max_iter, tol=setting.tol), 50)
            programs[name] = prog.lower(*args).compile()
    finally:
        setattr(module, attr, original)
        api._compiled.cache_clear()
    return programs


def alternate(programs: dict, args, rounds: int):
    """Each program's first output, and its seconds over `rounds` alternating runs."""
    outs = {name: jax.block_until_ready(p(*args)) for name, p in programs.items()}
    times = {name: [] for name in programs}
    for _ in range(rounds):
        for name, p in programs.items():
            t = time.perf_counter()
            jax.block_until_ready(p(*args))
            times[name].append(time.perf_counter() - t)
    return outs, times


def largest_relative_difference(a, b) -> float:
    return max(float(np.max(np.abs(np.asarray(u) - np.asarray(v))
                            / np.maximum(np.abs(v), 1e-300)))
               for u, v in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b),
                               strict=True))


def report(n: int, outs: dict, times: dict, reference: str) -> None:
    """Min / median ms per program, and how far its FitResult is from the reference's."""
    a = outs[reference]
    for name, b in outs.items():
        print(f"n {n} {name:9s} min {min(times[name]) * 1e3:7.1f} ms  median "
              f"{statistics.median(times[name]) * 1e3:7.1f} ms;  n_iter equal "
              f"{bool(np.array_equal(a.n_iter, b.n_iter))}, params within "
              f"{largest_relative_difference(a.params, b.params):.1e} relative, objective within "
              f"{float(np.max(np.abs(a.objective - b.objective))):.1e}", flush=True)
