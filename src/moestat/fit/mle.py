"""Direct maximum likelihood of the weighted mean log-likelihood over all free parameters in
unconstrained coordinates: projected L-BFGS (optax, zoom line search; `mle`, any model), or
damped saddle-free Newton with an autodiff Hessian (`newton`, models with at most
NEWTON_MAX_PARAMS free parameters: quadratic convergence where EM crawls along a weakly
identified direction)."""

from __future__ import annotations

import jax.numpy as jnp

from moestat.errors import InputError
from moestat.fit.loop import iterate
from moestat.fit.result import FitOptions
from moestat.fit.steps import newton_ascent, projected_lbfgs
from moestat.model import MixtureOfExperts, MoEParams

NEWTON_MAX_PARAMS = 64  # the Hessian costs one forward-over-reverse pass per parameter


def mean_loglik(model: MixtureOfExperts, params: MoEParams, X, y, weights):
    """sum_t w_t log p(y_t | x_t) / sum_t w_t."""
    return jnp.sum(weights * model.log_prob(params, X, y)) / jnp.sum(weights)


def mle(model: MixtureOfExperts, X, y, weights, params: MoEParams, bounds,
        options: FitOptions, limit=None):
    """Returns (params, n_iter, converged, history); one L-BFGS iteration per step."""
    init, lbfgs_step = projected_lbfgs(
        lambda free: -mean_loglik(model, model.from_free(free), X, y, weights),
        model.to_free(bounds[0]), model.to_free(bounds[1]))

    def step(state):
        free, opt_state, value = lbfgs_step(*state)
        return (free, opt_state), -value

    free0 = model.to_free(params)
    (free, _), n_iter, converged, history = iterate(step, (free0, init(free0)),
                                                    options.max_iter, options.tol,
                                                    limit=limit)
    return model.from_free(free), n_iter, converged, history


def check_newton(model: MixtureOfExperts) -> None:
    """Raise InputError when the model has more free parameters than `newton` handles."""
    p = model.n_free_coordinates()
    if p > NEWTON_MAX_PARAMS:
        raise InputError(f"estimator 'newton' needs at most {NEWTON_MAX_PARAMS} free "
                         f"parameters; this model has {p}: use 'mle' or 'em'")


def newton(model: MixtureOfExperts, X, y, weights, params: MoEParams, bounds,
           options: FitOptions, limit=None):
    """Returns (params, n_iter, converged, history); one step per iteration: the Newton step
    on |H| (H's eigenvalues' absolute values, floored: an ascent direction where the
    log-likelihood is not concave), clipped into the box and halved until the log-likelihood
    does not decrease (steps.newton_ascent). A step that finds no such point (a kink of a
    non-smooth likelihood, as with ReLU experts, or a coefficient pressed against its box)
    leaves the parameters: the loop then stops on the unchanged objective, and the fit is
    reported not converged."""

    def objective(p):
        return mean_loglik(model, p, X, y, weights)

    def step(state):
        p, _ = state
        new, ok, value = newton_ascent(objective, p, model.to_free, model.from_free, bounds, 1,
                                       options.ridge)
        return (new, ok), value

    (params, ok), n_iter, converged, history = iterate(step, (params, jnp.asarray(True)),
                                                       options.max_iter, options.tol,
                                                       limit=limit)
    return params, n_iter, converged & ok, history
