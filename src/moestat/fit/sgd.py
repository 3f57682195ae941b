"""Minibatch stochastic gradient descent: the optimiser of the gating papers' simulations
(a fixed number of epochs at a fixed learning rate, from near the truth).

The loss is the estimator's objective on a minibatch B of `batch_size` rows: least squares
for regression models, minus the log-likelihood for mixture models,

    L_B(theta) = (N / (|B| W)) sum_{t in B} w_t l_t(theta),   W = sum_t w_t,

an unbiased estimate of the full weighted mean sum_t w_t l_t / W (padded rows, w = 0, are
drawn but weigh nothing). Plain SGD (optax.sgd) on the unconstrained coordinates, iterates
clipped into the box. One iteration is one epoch: the rows reshuffled (a fixed key folded with
the epoch: the same order for every replicate of a batch), floor(N / batch_size) steps, the
last partial batch dropped. The stopping rule is every estimator's (fit/loop.py) on the full
objective after each epoch, so a run of `max_iter` epochs that still moves counts as not
converged — as it should: a fixed epoch budget is not a converged estimator.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from moestat.fit.loop import iterate
from moestat.fit.result import FitOptions
from moestat.model import MixtureOfExperts, MoEParams

SHUFFLE_KEY = 20240521  # fixed: SGD's row order is part of the estimator, not of the data


def sample_losses(model: MixtureOfExperts, params: MoEParams, X, y):
    """l_t (n,): squared residual (regression) or minus the log-density (mixture)."""
    if model.kind == "regression":
        return (y - model.mean(params, X)) ** 2
    return -model.log_prob(params, X, y)


def sgd(model: MixtureOfExperts, X, y, weights, params: MoEParams, bounds,
        options: FitOptions):
    """Returns (params, n_iter (epochs), converged, history); history holds minus the mean
    loss after each epoch (every estimator maximises its objective)."""
    n_rows = X.shape[0]
    batch = min(options.batch_size, n_rows)
    n_batches = n_rows // batch
    total = jnp.sum(weights)
    lo, hi = model.to_free(bounds[0]), model.to_free(bounds[1])
    import optax  # here: `moestat fit`'s EM does not load it (docs/design.md, cold start)

    opt = optax.sgd(options.learning_rate)

    def mean_loss(free, idx):
        p = model.from_free(free)
        w = weights[idx]
        return n_rows * jnp.sum(w * sample_losses(model, p, X[idx], y[idx])) / (idx.size * total)

    grad = jax.grad(mean_loss)

    def full_loss(free):
        p = model.from_free(free)
        return jnp.sum(weights * sample_losses(model, p, X, y)) / total

    def epoch(state):
        free, opt_state, i = state
        value = full_loss(free)
        order = jax.random.permutation(jax.random.fold_in(jax.random.PRNGKey(SHUFFLE_KEY), i),
                                       n_rows)[: n_batches * batch].reshape(n_batches, batch)

        def minibatch(carry, idx):
            free, opt_state = carry
            g = jax.tree_util.tree_map(lambda a: jnp.where(jnp.isfinite(a), a, 0.0),
                                       grad(free, idx))
            updates, opt_state = opt.update(g, opt_state, free)
            free = jax.tree_util.tree_map(jnp.clip, optax.apply_updates(free, updates), lo, hi)
            return (free, opt_state), None

        (free, opt_state), _ = jax.lax.scan(minibatch, (free, opt_state), order)
        return (free, opt_state, i + 1), -value

    free0 = model.to_free(params)
    floor = 0.0 if model.kind == "regression" else 1.0
    (free, _, _), n_iter, converged, history = iterate(
        epoch, (free0, opt.init(free0), jnp.asarray(0)), options.max_iter, options.tol, floor)
    return model.from_free(free), n_iter, converged, history
