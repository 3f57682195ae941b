"""Direct maximum likelihood: projected L-BFGS (optax, zoom line search) of the weighted mean
log-likelihood over all free parameters in unconstrained coordinates."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from moestat.fit.loop import iterate
from moestat.fit.result import FitOptions
from moestat.model import MixtureOfExperts, MoEParams


def mean_loglik(model: MixtureOfExperts, params: MoEParams, X, y, weights):
    """sum_t w_t log p(y_t | x_t) / sum_t w_t."""
    return jnp.sum(weights * model.log_prob(params, X, y)) / jnp.sum(weights)


def mle(model: MixtureOfExperts, X, y, weights, params: MoEParams, bounds,
        options: FitOptions):
    """Returns (params, n_iter, converged, history); one L-BFGS iteration per step."""
    lo, hi = model.to_free(bounds[0]), model.to_free(bounds[1])

    def loss(free):
        return -mean_loglik(model, model.from_free(free), X, y, weights)

    opt = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(loss)

    def step(state):
        free, opt_state = state
        value, grad = value_and_grad(free, state=opt_state)
        grad = jax.tree_util.tree_map(lambda g: jnp.where(jnp.isfinite(g), g, 0.0), grad)
        updates, opt_state = opt.update(grad, opt_state, free, value=value, grad=grad,
                                        value_fn=loss)
        free = jax.tree_util.tree_map(jnp.clip, optax.apply_updates(free, updates), lo, hi)
        return (free, opt_state), -value

    free0 = model.to_free(params)
    (free, _), n_iter, converged, history = iterate(step, (free0, opt.init(free0)),
                                                    options.max_iter, options.tol)
    return model.from_free(free), n_iter, converged, history
