"""How well can k = 3 sigmoid-gated atoms represent the k* = 2 regime-2 truth of
experiments/sigmoid_vs_softmax.toml? Noiseless least squares from the exact split.

    python experiments/probes/best_approximation.py [EXPERT ...]   (default: all three)

Prints, per expert family, the RMS misfit of the projection on a 20 000-point grid of [0, 1],
its gate and expert parameters. For homogeneous experts (ReLU ridge, linear) the copies keep the
true gate and share the expert's amplitude (a, b halved): the truth is exactly representable, by
a continuum of splits; for GELU a misfit remains.
"""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import numpy as np

from moestat import MixtureOfExperts
from moestat.fit import FitOptions, fit, near_truth

TRUTH = {"gate.beta1": [[8.0], [-8.0]], "gate.beta0": [-4.0, 4.0], "expert.a": [[6.0], [-6.0]],
         "expert.b": [-4.5, 1.5], "noise.var": 4e-4}


def main(experts: list[str]) -> None:
    X = ((jnp.arange(20000) + 0.5) / 20000)[:, None]
    for expert in experts:
        tm = MixtureOfExperts.create("sigmoid", expert, "gaussian", n_experts=2, n_features=1,
                                     kind="regression")
        fm = MixtureOfExperts.create("sigmoid", expert, "gaussian", n_experts=3, n_features=1,
                                     kind="regression")
        truth = tm.from_named(TRUTH)
        y = tm.mean(truth, X)
        start = near_truth(fm, truth, jax.random.PRNGKey(0), 0.0, (0, 0, 1))
        r = fit(fm, X, y, start, estimator="lse", options=FitOptions(max_iter=5000, tol=1e-15))
        p = r.params
        split_rmse = float(jnp.sqrt(jnp.mean((fm.mean(start, X) - y) ** 2)))
        print(f"{expert}: exact split rmse {split_rmse:.3g} -> projection rmse "
              f"{float(jnp.sqrt(-r.objective)):.3g} ({int(r.n_iter)} iterations)")
        print(f"  gate beta1 {np.round(np.ravel(p.gate.beta1), 3)} beta0 "
              f"{np.round(np.asarray(p.gate.beta0), 3)}")
        print(f"  expert a {np.round(np.ravel(p.expert.a), 3)} b "
              f"{np.round(np.asarray(p.expert.b), 3)}")


if __name__ == "__main__":
    main(sys.argv[1:] or ["ridge:relu", "ridge:gelu", "linear"])
