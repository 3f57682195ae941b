"""Optimisers on the non-distinguishable `nu_varies` setting: what do EM and L-BFGS find?

Same data for every optimiser (the engine's simulator, root seed 0, replicates 0..R-1), same
near-truth starts; for each n: plain EM capped at 500 and at 5000 iterations, EM accelerated by
SQUAREM (fit/acceleration.py) capped at 500 and at 2000 (the preset's), L-BFGS MLE with the
default tolerance 1e-8 and with 1e-12. Printed per (n, optimiser): fits converged, fits with a
parameter on the box boundary, the mean total log-likelihood gained over plain EM with 500
iterations, the median errors |exp(tau_hat) - exp(tau*)|, ||eta_hat - eta*||, |nu_hat - nu*|,
and the wall time (compilation included).

Run: .venv/bin/python benchmarks/nu_varies_optimizers.py [--n 2000 10000 30000]
     [--replicates 8]
"""

from __future__ import annotations

import argparse
import functools
import time

import jax
import numpy as np

from moestat import losses as L
from moestat.experiments.grid import replicate_keys
from moestat.experiments.runner import resolve
from moestat.experiments.settings import build
from moestat.experiments.simulation import simulate
from moestat.fit import FitOptions, fit_batch
from moestat.shipped import experiment_path

CONFIG = experiment_path("contaminated_nondistinguishable")
OPTIMISERS = [("EM, max_iter 500", "em", 500, 1e-8, "none"),
              ("EM, max_iter 5000", "em", 5000, 1e-8, "none"),
              ("EM + SQUAREM, max_iter 500", "em", 500, 1e-8, "squarem"),
              ("EM + SQUAREM, max_iter 2000 (preset)", "em", 2000, 1e-8, "squarem"),
              ("L-BFGS MLE, tol 1e-8", "mle", 5000, 1e-8, "none"),
              ("L-BFGS MLE, tol 1e-12", "mle", 5000, 1e-12, "none")]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[2000, 10000, 30000])
    ap.add_argument("--replicates", type=int, default=8)
    ap.add_argument("--setting", default="nu_varies")
    a = ap.parse_args()
    config = resolve(CONFIG, "full")
    setting = next(s for s in config.settings if s.name == a.setting)
    models = build(setting)
    print("| n | optimiser | converged | on bound | total loglik gain | exp_tau | eta | nu "
          "| seconds |\n|---|---|---|---|---|---|---|---|---|")
    for n in a.n:
        truth = models.truth(n)
        keys = replicate_keys(config.seed, setting.data_stream, n, range(a.replicates))
        X, y, start, _ = simulate(models, keys, truth, n)
        base = None
        for label, est, max_iter, tol, accelerate in OPTIMISERS:
            t = time.perf_counter()
            r = fit_batch(models.fit_model, X, y, start, estimator=est,
                          options=FitOptions(max_iter=max_iter, tol=tol,
                                             accelerate=accelerate))
            jax.block_until_ready(r.objective)
            seconds = time.perf_counter() - t
            ll = np.asarray(r.loglik) * n
            base = ll if base is None else base
            errors = functools.partial(L.prompt_errors, models.fit_model)
            e = jax.device_get(jax.vmap(errors, in_axes=(0, None))(r.params, truth))
            print(f"| {n} | {label} | {int(np.sum(r.converged))}/{a.replicates} | "
                  f"{int(np.sum(r.at_bound))} | {np.mean(ll - base):+.3f} | "
                  f"{np.median(e['exp_tau']):.3g} | {np.median(e['eta']):.3g} | "
                  f"{np.median(e['nu']):.3g} | {seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
