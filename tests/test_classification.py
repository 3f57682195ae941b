"""Classification MoE: multinomial-logistic experts under a gate, the categorical likelihood
(arXiv 2310.14188): its law, its refusals, and EM's data-driven starts."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from moestat import InputError, MixtureOfExperts
from moestat.fit import FitOptions, fit, fit_random, near_truth

MODEL = MixtureOfExperts.create("softmax", "multinomial:3", "categorical", n_experts=2,
                                n_features=1, kind="classification")
TRUTH = MODEL.from_named({"gate.beta1": [[3.0], [0.0]], "gate.beta0": [0.5, 0.0],
                          "expert.eta": [[[3.0], [-2.0]], [[-2.0], [2.5]]],
                          "expert.tau": [[0.5, -0.5], [0.0, 1.0]]})


def data(n, seed):
    X = jax.random.normal(jax.random.PRNGKey(seed), (n, 1))
    return X, MODEL.sample(jax.random.PRNGKey(seed + 1), TRUTH, X)


def test_class_probabilities_are_the_gated_mixture_of_softmaxes():
    """P(y = l | x) against the formula in NumPy, and the sampler's label frequencies against
    it: 200 000 draws give each class frequency within 4 binomial s.e. (~0.004)."""
    X, y = data(200_000, 0)
    x = np.asarray(X[:, 0])
    g = np.stack([3 * x + 0.5, np.zeros_like(x)], axis=1)
    w = np.exp(g - g.max(axis=1, keepdims=True))
    w /= w.sum(axis=1, keepdims=True)
    z = np.stack([np.stack([3 * x + 0.5, -2 * x - 0.5, 0 * x], 1),
                  np.stack([-2 * x, 2.5 * x + 1.0, 0 * x], 1)], axis=1)  # (n, k, R)
    p = np.exp(z - z.max(axis=2, keepdims=True))
    p /= p.sum(axis=2, keepdims=True)
    expect = np.einsum("nk,nkr->nr", w, p)
    got = np.exp(np.asarray(MODEL.class_log_probs(TRUTH, X)))
    np.testing.assert_allclose(got, expect, rtol=1e-10)
    freq = np.bincount(np.asarray(y).astype(int), minlength=3) / y.shape[0]
    se = np.sqrt(expect.mean(0) * (1 - expect.mean(0)) / y.shape[0])
    assert np.all(np.abs(freq - expect.mean(0)) < 4 * se)
    np.testing.assert_allclose(np.asarray(MODEL.log_prob(TRUTH, X[:50], y[:50])),
                               np.log(expect[np.arange(50), np.asarray(y[:50]).astype(int)]),
                               rtol=1e-10)


@pytest.mark.parametrize("expert,noise,kind", [("multinomial:3", "gaussian", "classification"),
                                               ("linear", "categorical", "classification"),
                                               ("multinomial:3", "categorical", "mixture")])
def test_label_experts_pair_with_the_categorical_likelihood_only(expert, noise, kind):
    with pytest.raises(InputError, match="classification models pair a categorical expert"):
        MixtureOfExperts.create("softmax", expert, noise, n_experts=2, n_features=1,
                                kind=kind)


def test_random_starts_reach_the_near_truth_optimum():
    """EM from the data-driven starts (the users' estimator) reaches the log-likelihood of EM
    from next to the truth, on the same 3 000 labels (SQUAREM: plain EM creeps here)."""
    X, y = data(3000, 3)
    options = FitOptions(max_iter=2000, accelerate="squarem")
    near = fit(MODEL, X, y, near_truth(MODEL, TRUTH, jax.random.PRNGKey(0), 0.1),
               options=options)
    best, _ = fit_random(MODEL, X, y, jax.random.PRNGKey(1), n_init=3, options=options)
    assert bool(near.converged) and bool(best.converged)
    assert float(best.loglik) >= float(near.loglik) - 1e-6
    assert not bool(best.separated)
