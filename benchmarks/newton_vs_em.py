"""Newton steps against EM on one cell of a study, in one process: the replicates' data and
near-truth starts of the sweep (10 replicates at n), each program compiled first, then timed;
per replicate the iterations, the log-likelihood (times n) and the largest gradient entry in
free coordinates at the end (0 at a stationary point). The pair compared follows the
setting: a study fitted by `newton` (moestat/fit/mle.py) against EM with SQUAREM; a study
fitted by EM finished by Newton (`finish = "newton"`, moestat/fit/em_newton.py) against the
same EM without the finish; any other study's estimator against `newton`.

Run: .venv/bin/python benchmarks/newton_vs_em.py [study setting n]
     (default: classification_experts modified_vanishing 1000)
"""

from __future__ import annotations

import dataclasses
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from moestat.experiments.config import load_config
from moestat.experiments.grid import replicate_keys
from moestat.experiments.settings import build
from moestat.experiments.simulation import simulate
from moestat.fit.api import compile_batch
from moestat.fit.mle import mean_loglik
from moestat.shipped import config_path

REPLICATES = 10


def largest_gradient(model, params, X, y, w):
    u, unravel = ravel_pytree(model.to_free(params))
    g = jax.grad(lambda v: mean_loglik(model, model.from_free(unravel(v)), X, y, w))(u)
    return jnp.max(jnp.abs(g))


def pair(setting, options) -> list[tuple[str, str, object]]:
    """[(label, estimator, options)] of the Newton variant, then its baseline."""
    if setting.finish == "newton":
        return [("em+newton", "em", options),
                ("em", "em", dataclasses.replace(options, finish="none"))]
    if setting.estimator == "newton":
        return [("newton", "newton", options),
                ("em", "em", dataclasses.replace(options, accelerate="squarem"))]
    return [("newton", "newton", options), (setting.estimator, setting.estimator, options)]


def run(study: str, setting: str, n: int) -> dict:
    config = load_config(config_path(study))
    s = next(x for x in config.settings if x.name == setting)
    models = build(s)
    truth = models.truth(n)
    keys = replicate_keys(config.seed, s.data_stream, n, list(range(REPLICATES)))
    X, y, start, _ = simulate(models, keys, truth, n, n)
    w = jnp.ones(y.shape)
    out = {}
    for label, estimator, options in pair(s, models.options):
        program = compile_batch(models.fit_model, estimator, options)
        compiled = program.lower(X, y, w, start, None).compile()
        t = time.perf_counter()
        r = jax.block_until_ready(compiled(X, y, w, start, None))
        seconds = time.perf_counter() - t
        grad = jax.vmap(lambda p, a, b, c: largest_gradient(models.fit_model, p, a, b, c))(
            r.params, X, y, w)
        out[label] = {"seconds": seconds, "n_iter": np.asarray(r.n_iter),
                          "converged": int(np.sum(r.converged)),
                          "loglik": np.asarray(r.loglik) * n, "gradient": np.asarray(grad)}
    return out


if __name__ == "__main__":
    study, setting, n = (sys.argv[1:4] if len(sys.argv) > 3
                         else ("classification_experts", "modified_vanishing", "1000"))
    res = run(study, setting, int(n))
    new, base = list(res)
    for name, r in res.items():
        print(f"{name:9s} {r['seconds']:7.2f} s  converged {r['converged']}/{REPLICATES}  "
              f"iterations {r['n_iter'].tolist()}")
        print(f"          largest gradient entry {np.array2string(r['gradient'], precision=1)}")
    diff = res[new]["loglik"] - res[base]["loglik"]
    print(f"{new} - {base} log-likelihood (nats): {np.array2string(diff, precision=3)}")
    print(f"time {base} / {new}: {res[base]['seconds'] / res[new]['seconds']:.1f}x")
