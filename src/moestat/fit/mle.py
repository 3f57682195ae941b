"""Direct maximum likelihood: projected L-BFGS (optax, zoom line search) of the weighted mean
log-likelihood over all free parameters in unconstrained coordinates."""

from __future__ import annotations

import jax.numpy as jnp

from moestat.fit.loop import iterate
from moestat.fit.result import FitOptions
from moestat.fit.steps import projected_lbfgs
from moestat.model import MixtureOfExperts, MoEParams


def mean_loglik(model: MixtureOfExperts, params: MoEParams, X, y, weights):
    """sum_t w_t log p(y_t | x_t) / sum_t w_t."""
    return jnp.sum(weights * model.log_prob(params, X, y)) / jnp.sum(weights)


def mle(model: MixtureOfExperts, X, y, weights, params: MoEParams, bounds,
        options: FitOptions):
    """Returns (params, n_iter, converged, history); one L-BFGS iteration per step."""
    init, lbfgs_step = projected_lbfgs(
        lambda free: -mean_loglik(model, model.from_free(free), X, y, weights),
        model.to_free(bounds[0]), model.to_free(bounds[1]))

    def step(state):
        free, opt_state, value = lbfgs_step(*state)
        return (free, opt_state), -value

    free0 = model.to_free(params)
    (free, _), n_iter, converged, history = iterate(step, (free0, init(free0)),
                                                    options.max_iter, options.tol)
    return model.from_free(free), n_iter, converged, history
