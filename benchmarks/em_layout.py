"""How the EM kernels are laid out on the CPU, measured in one process (best of 3 warm runs).

1. Lanes per pass (fit/batch_layout.py): the full contaminated preset's fit program (R = 20
   replicates, the padded sizes of moestat/padding.py) with every lane in one vmap against lax.map
   over groups of g lanes; seconds per block, the ratio to one vmap, compile seconds, and the
   largest relative difference of the objectives (rounding only).
2. Component reductions (component_reductions.py): the E-step's normaliser logsumexp(log w + log f)
   over K = 2 components inside a 10-iteration loop, jax.nn.logsumexp against the unrolled
   column form.

Run: .venv/bin/python benchmarks/em_layout.py [n ...]
"""

from __future__ import annotations

import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from moestat import component_reductions
from moestat.bench.em_throughput import best_seconds
from moestat.experiments.cell import SPLIT_AFTER
from moestat.experiments.config import load_config
from moestat.experiments.grid import replicate_keys
from moestat.experiments.settings import build
from moestat.experiments.simulation import simulate
from moestat.fit import compile_batch, lanes_per_pass
from moestat.shipped import experiment_path

SIZES = (8859, 29764, 61585, 100000)  # the full contaminated preset's padded sizes
GROUPS = (20, 4, 2, 1)  # 20 = one vmap over every lane (the baseline)


def lanes(n: int, R: int = 20) -> None:
    setting = load_config(experiment_path("contaminated_distinguishable")).settings[0]
    models = build(setting)
    truth = models.truth(n)
    X, y, start, _ = simulate(models, replicate_keys(0, setting.data_stream, n, range(R)), truth, n)
    w = jnp.ones(y.shape)
    base, chosen = None, lanes_per_pass(R, n)
    for g in GROUPS:
        t0 = time.perf_counter()
        program = compile_batch(models.fit_model, setting.estimator, models.options,
                                split_after=SPLIT_AFTER, lanes_per_pass=g)
        program = program.lower(X, y, w, start, None).compile()
        compile_s = time.perf_counter() - t0
        seconds, r = best_seconds(lambda p=program: p(X, y, w, start, None))
        obj = np.asarray(r.objective)
        if base is None:
            base = (seconds, obj)
        rel = float(np.max(np.abs(obj - base[1]) / np.abs(base[1])))
        mark = "  <- lanes_per_pass" if g == chosen else ""
        print(f"n={n:6d} lanes/pass {g:2d}: {seconds:6.3f} s per block "
              f"({base[0] / seconds:4.2f}x one vmap), compile {compile_s:4.2f} s, "
              f"objectives within {rel:.1e}{mark}", flush=True)


def reductions(R: int = 20, n: int = 100_000, loops: int = 10) -> None:
    """The E-step's normaliser for a two-component gate: log-weights from logits z, plus
    component log-densities, reduced over the component axis (as in fit/em.py)."""
    key = jax.random.PRNGKey(0)
    z, f = jax.random.normal(key, (R, n)), jax.random.normal(jax.random.fold_in(key, 1), (R, n))

    def looped(lse):
        def body(_, z):
            log_joint = jnp.stack([jax.nn.log_sigmoid(z) + f, jax.nn.log_sigmoid(-z) - f], -1)
            return z + 1e-30 * jnp.sum(lse(log_joint))
        return jax.jit(lambda z: jax.lax.fori_loop(0, loops, body, z))

    times = {}
    for name, lse in [("jax.nn.logsumexp", lambda a: jax.nn.logsumexp(a, axis=-1)),
                      ("component_reductions.logsumexp", component_reductions.logsumexp)]:
        fn = looped(lse)
        jax.block_until_ready(fn(z))
        times[name] = best_seconds(lambda fn=fn: fn(z))[0] / loops
    ref = times["jax.nn.logsumexp"]
    for name, s in times.items():
        print(f"E-step normaliser, K = 2, ({R}, {n}): {name:20s} {s * 1e3:6.1f} ms per pass "
              f"({ref / s:4.2f}x)")


def main(argv=None) -> None:
    sizes = [int(a) for a in (argv if argv is not None else sys.argv[1:])] or list(SIZES)
    for n in sizes:
        lanes(n)
    reductions()


if __name__ == "__main__":
    main()
