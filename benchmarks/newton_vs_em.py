"""Direct MLE by Newton steps (`estimator = "newton"`, moestat/fit/mle.py) against a study's own
estimator (EM with SQUAREM where the study fits by Newton) on one of its cells, in one process:
the replicates' data and near-truth starts of the sweep (10 replicates at n), each estimator's
program compiled first, then timed; per replicate the iterations, the log-likelihood (times n)
and the largest gradient entry in free coordinates at the end (0 at a stationary point).

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


def run(study: str, setting: str, n: int) -> dict:
    config = load_config(config_path(study))
    s = next(x for x in config.settings if x.name == setting)
    models = build(s)
    truth = models.truth(n)
    keys = replicate_keys(config.seed, s.data_stream, n, list(range(REPLICATES)))
    X, y, start, _ = simulate(models, keys, truth, n, n)
    w = jnp.ones(y.shape)
    out = {}
    baseline = ("em", dataclasses.replace(models.options, accelerate="squarem")) \
        if s.estimator == "newton" else (s.estimator, models.options)
    for estimator, options in (("newton", models.options), baseline):
        program = compile_batch(models.fit_model, estimator, options)
        compiled = program.lower(X, y, w, start, None).compile()
        t = time.perf_counter()
        r = jax.block_until_ready(compiled(X, y, w, start, None))
        seconds = time.perf_counter() - t
        grad = jax.vmap(lambda p, a, b, c: largest_gradient(models.fit_model, p, a, b, c))(
            r.params, X, y, w)
        out[estimator] = {"seconds": seconds, "n_iter": np.asarray(r.n_iter),
                          "converged": int(np.sum(r.converged)),
                          "loglik": np.asarray(r.loglik) * n, "gradient": np.asarray(grad)}
    return out


if __name__ == "__main__":
    study, setting, n = (sys.argv[1:4] if len(sys.argv) > 3
                         else ("classification_experts", "modified_vanishing", "1000"))
    res = run(study, setting, int(n))
    base = next(k for k in res if k != "newton")
    for name, r in res.items():
        print(f"{name:7s} {r['seconds']:7.2f} s  converged {r['converged']}/{REPLICATES}  "
              f"iterations {r['n_iter'].tolist()}")
        print(f"        largest gradient entry {np.array2string(r['gradient'], precision=1)}")
    diff = res["newton"]["loglik"] - res[base]["loglik"]
    print(f"newton - {base} log-likelihood (nats): {np.array2string(diff, precision=3)}")
    print(f"time {base} / newton: {res[base]['seconds'] / res['newton']['seconds']:.1f}x")
