"""Minibatch stochastic gradient descent: the optimiser of the gating papers' simulations
(a fixed number of epochs at a fixed learning rate, from near the truth).

The loss is the estimator's objective on a minibatch B of `batch_size` rows: least squares
for regression models, minus the log-likelihood for mixture models,

    L_B(theta) = (n / (|B| W)) sum_{t in B} w_t l_t(theta),   W = sum_t w_t,

an unbiased estimate of the full weighted mean sum_t w_t l_t / W over the n rows with w > 0.
Rows with w = 0 (padding to a shared program size) are never drawn, so a fit does not depend
on how far its rows were padded. Plain SGD (optax.sgd) on the unconstrained coordinates,
iterates clipped into the box. One iteration is one epoch: the n rows reshuffled (row t's
place drawn from a fixed key folded with the epoch and t: the same order for every replicate
of a batch and for any padding), floor(n / batch_size) steps (one step on all n rows when
n < batch_size), the last partial batch dropped. The stopping rule is every estimator's
(fit/loop.py) on the full objective after each epoch, so a run of `max_iter` epochs that still
moves counts as not converged — as it should: a fixed epoch budget is not a converged
estimator.
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
        options: FitOptions, limit=None):
    """Returns (params, n_iter (epochs), converged, history); history holds minus the mean
    loss after each epoch (every estimator maximises its objective)."""
    n_rows = X.shape[0]
    batch = min(options.batch_size, n_rows)
    real = weights > 0
    n_real = jnp.sum(real)
    n_batches = jnp.maximum(n_real // batch, 1)
    drawn = jnp.minimum(batch, n_real)  # |B|: rows of a batch with w > 0
    total = jnp.sum(weights)
    lo, hi = model.to_free(bounds[0]), model.to_free(bounds[1])
    import optax  # here: `moestat fit`'s EM does not load it (docs/design.md, cold start)

    opt = optax.sgd(options.learning_rate)

    def mean_loss(free, idx):
        p = model.from_free(free)
        w = weights[idx]
        return n_real * jnp.sum(w * sample_losses(model, p, X[idx], y[idx])) / (drawn * total)

    grad = jax.grad(mean_loss)

    def full_loss(free):
        p = model.from_free(free)
        return jnp.sum(weights * sample_losses(model, p, X, y)) / total

    def epoch(state):
        free, opt_state, i = state
        value = full_loss(free)
        key = jax.random.fold_in(jax.random.PRNGKey(SHUFFLE_KEY), i)
        place = jax.vmap(lambda t: jax.random.uniform(jax.random.fold_in(key, t)))(
            jnp.arange(n_rows))
        order = jnp.argsort(jnp.where(real, place, 2.0))  # the rows with w > 0 first, shuffled

        def minibatch(j, carry):
            free, opt_state = carry
            idx = jax.lax.dynamic_slice(order, (j * batch,), (batch,))
            g = jax.tree_util.tree_map(lambda a: jnp.where(jnp.isfinite(a), a, 0.0),
                                       grad(free, idx))
            updates, opt_state = opt.update(g, opt_state, free)
            free = jax.tree_util.tree_map(jnp.clip, optax.apply_updates(free, updates), lo, hi)
            return free, opt_state

        free, opt_state = jax.lax.fori_loop(0, n_batches, minibatch, (free, opt_state))
        return (free, opt_state, i + 1), -value

    free0 = model.to_free(params)
    floor = 0.0 if model.kind == "regression" else 1.0
    (free, _, _), n_iter, converged, history = iterate(
        epoch, (free0, opt.init(free0), jnp.asarray(0)), options.max_iter, options.tol, floor,
        limit)
    return model.from_free(free), n_iter, converged, history
