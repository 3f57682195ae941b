"""Estimator mechanics: vmapped replicates, MLE vs EM, weights/padding, bounds flags."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from moestat import MixtureOfExperts
from moestat.fit import fit, fit_batch, near_truth
from moestat.fit.api import default_bounds

MODEL = MixtureOfExperts.create("softmax", "linear", "gaussian", n_experts=2, n_features=1)
TRUTH = MODEL.from_named({"gate.beta1": [[4.0], [0.0]], "gate.beta0": [0.5, 0.0],
                          "expert.a": [[2.0], [-1.0]], "expert.b": [1.0, -0.5],
                          "noise.var": [0.05, 0.08]})


def data(n, seed):
    kx, ky = jax.random.split(jax.random.PRNGKey(seed))
    X = jax.random.normal(kx, (n, 1))
    return X, MODEL.sample(ky, TRUTH, X)


def test_fit_batch_equals_individual_fits():
    R, n = 4, 3000
    Xs, ys, starts = [], [], []
    for r in range(R):
        X, y = data(n, r)
        Xs.append(X)
        ys.append(y)
        starts.append(near_truth(MODEL, TRUTH, jax.random.PRNGKey(100 + r), 0.1))
    stack = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *starts)
    batch = fit_batch(MODEL, jnp.stack(Xs), jnp.stack(ys), stack)
    assert batch.loglik.shape == (R,) and batch.params.expert.a.shape == (R, 2, 1)
    for r in range(R):
        single = fit(MODEL, Xs[r], ys[r], starts[r])
        np.testing.assert_allclose(batch.loglik[r], single.loglik, rtol=1e-10)
        np.testing.assert_allclose(batch.params.expert.a[r], single.params.expert.a, rtol=1e-7,
                                   atol=1e-9)
        assert int(batch.n_iter[r]) == int(single.n_iter)


def test_mle_and_em_reach_the_same_maximum():
    X, y = data(20_000, 0)
    start = near_truth(MODEL, TRUTH, jax.random.PRNGKey(1), 0.1)
    em = fit(MODEL, X, y, start, estimator="em")
    mle = fit(MODEL, X, y, start, estimator="mle")
    assert bool(em.converged) and bool(mle.converged)
    # per-sample log-likelihoods agree to 1e-7 (both stop at relative change 1e-8)
    assert abs(float(em.loglik) - float(mle.loglik)) < 1e-7
    np.testing.assert_allclose(em.params.expert.a, mle.params.expert.a, atol=1e-3)


def test_zero_weight_rows_change_nothing():
    X, y = data(2000, 3)
    start = near_truth(MODEL, TRUTH, jax.random.PRNGKey(4), 0.1)
    plain = fit(MODEL, X, y, start)
    Xp = jnp.concatenate([X, X[:500] + 3.0])  # junk rows with weight 0
    yp = jnp.concatenate([y, y[:500] * 10.0])
    w = jnp.concatenate([jnp.ones(2000), jnp.zeros(500)])
    padded = fit(MODEL, Xp, yp, start, weights=w, bounds=default_bounds(MODEL, y, jnp.ones(2000)))
    np.testing.assert_allclose(padded.loglik, plain.loglik, rtol=1e-12)
    np.testing.assert_allclose(padded.params.gate.beta1, plain.params.gate.beta1, rtol=1e-9)


def test_bounds_are_kept_and_flagged():
    X, y = data(5000, 5)
    start = near_truth(MODEL, TRUTH, jax.random.PRNGKey(6), 0.1)
    lo, hi = default_bounds(MODEL, y, jnp.ones(5000))
    # the true gate slope is 4: a box |beta| <= 2 must hold it at the bound
    lo = lo._replace(gate=lo.gate._replace(beta1=jnp.full((2, 1), -2.0)))
    hi = hi._replace(gate=hi.gate._replace(beta1=jnp.full((2, 1), 2.0)))
    r = fit(MODEL, X, y, start, bounds=(lo, hi))
    assert bool(r.at_bound) and float(jnp.max(jnp.abs(r.params.gate.beta1))) <= 2.0 + 1e-12
    free = fit(MODEL, X, y, start)
    assert not bool(free.at_bound) and not bool(free.floored)
    # a variance floor above the true variances is attained and flagged
    lo2 = lo._replace(gate=default_bounds(MODEL, y, jnp.ones(5000))[0].gate,
                      noise=lo.noise._replace(var=jnp.full(2, 0.2)))
    hi2 = hi._replace(gate=default_bounds(MODEL, y, jnp.ones(5000))[1].gate)
    r2 = fit(MODEL, X, y, start, bounds=(lo2, hi2))
    assert bool(r2.floored) and bool(r2.at_bound)
    assert float(jnp.min(r2.params.noise.var)) >= 0.2 - 1e-12
    h = np.asarray(r2.history)[: int(r2.n_iter)]
    assert np.all(np.diff(h) >= -1e-9 * np.abs(h[:-1]))  # still monotone under the box
