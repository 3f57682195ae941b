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


def check_newton(model: MixtureOfExperts, finish: bool = False) -> None:
    """Raise InputError when the model has more free parameters than Newton steps handle
    (the `newton` estimator, or EM's Newton `finish`)."""
    p = model.n_free_coordinates()
    if p > NEWTON_MAX_PARAMS:
        what, instead = (("finish 'newton'", "EM without it") if finish
                         else ("estimator 'newton'", "'mle' or 'em'"))
        raise InputError(f"{what} needs at most {NEWTON_MAX_PARAMS} free parameters; this "
                         f"model has {p}: use {instead}")


HESSIAN_ROWS = 8192  # rows per block of the Newton Hessian: its forward-over-reverse pass
# holds p tangents of every (rows, K) intermediate (1.1 GB for 1e5 rows, K = 5, p = 25)


def row_blocks(X, y, weights, rows: int = HESSIAN_ROWS):
    """(X, y, weights) cut into blocks of `rows` rows with a leading block axis, the last
    block padded by zero-weight copies of the first row (they add nothing to a weighted
    sum), or None when there are at most `rows` rows."""
    n = y.shape[0]
    if n <= rows:
        return None
    blocks = -(-n // rows)
    pad = blocks * rows - n

    def cut(a, fill):
        a = jnp.concatenate([a, jnp.broadcast_to(fill, (pad,) + a.shape[1:])])
        return a.reshape((blocks, rows) + a.shape[1:])

    return cut(X, X[0]), cut(y, y[0]), cut(weights, jnp.zeros(()))


def newton_step(model: MixtureOfExperts, X, y, weights, bounds, options: FitOptions):
    """One damped saddle-free Newton step of the mean log-likelihood as a function
    p -> (new params, ok, objective at p, predicted gain) (steps.newton_ascent), its Hessian
    formed over blocks of HESSIAN_ROWS rows."""
    total = jnp.sum(weights)

    def objective(p):
        return mean_loglik(model, p, X, y, weights)

    def part(p, block):
        Xb, yb, wb = block
        return jnp.sum(wb * model.log_prob(p, Xb, yb)) / total

    data = row_blocks(X, y, weights)
    blocks = None if data is None else (part, data)
    return lambda p: newton_ascent(objective, p, model.to_free, model.from_free, bounds, 1,
                                   options.ridge, blocks)


def newton(model: MixtureOfExperts, X, y, weights, params: MoEParams, bounds,
           options: FitOptions, limit=None):
    """Returns (params, n_iter, converged, history); one step per iteration: the Newton step
    on |H| (H's eigenvalues' absolute values, floored: an ascent direction where the
    log-likelihood is not concave), clipped into the box and halved until the log-likelihood
    does not decrease (`newton_step`). A step that finds no such point leaves the parameters
    and the loop stops on the unchanged objective: the fit converged if that step's predicted
    gain g . delta / 2 was within the stopping rule (tol * max(|objective|, 1): an optimum to
    the rule's resolution), not if it was larger (a kink of a non-smooth likelihood, as with
    ReLU experts, or a coefficient pressed against its box)."""
    one_step = newton_step(model, X, y, weights, bounds, options)

    def step(state):
        new, ok, value, predicted = one_step(state[0])
        resolved = ok | (predicted <= options.tol * jnp.maximum(jnp.abs(value), 1.0))
        return (new, resolved), value

    (params, ok), n_iter, converged, history = iterate(step, (params, jnp.asarray(True)),
                                                       options.max_iter, options.tol,
                                                       limit=limit)
    return params, n_iter, converged & ok, history
