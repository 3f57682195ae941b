"""Least squares for regression MoE: G_hat = argmin sum_t w_t (y_t - f_G(x_t))^2.

Levenberg-Marquardt on the gate and expert parameters in unconstrained coordinates:
delta = (J^T W J + mu diag(J^T W J))^-1 J^T W r, with mu decreased after an accepted step and
increased (up to 12 times) until the weighted sum of squares decreases; iterates are clipped
into the box. Models with more than LM_MAX_PARAMETERS free parameters (the (n, P) Jacobian and
the P x P solve grow too large: d = 32 gating models have ~600) run projected L-BFGS on the
same sum of squares instead (`FitOptions.lse_solver` forces either). The shared noise variance
is the weighted mean squared residual. On the CPU, L-BFGS lanes of a batch run one at a time
(fit/api.py): its line search's data-dependent loops make vmapped lanes wait for each other,
and one lane's (n, P) work already occupies the cores — at d = 32, n = 1e3, 4 lanes took
16.6 s vmapped, 12.7 s in pairs, 7.8 s one by one.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from moestat.fit.loop import iterate
from moestat.fit.result import FitOptions
from moestat.fit.steps import projected_lbfgs
from moestat.model import MixtureOfExperts, MoEParams

LM_MAX_PARAMETERS = 64


def solver(model: MixtureOfExperts, options: FitOptions) -> str:
    """"lm" or "lbfgs": `options.lse_solver`, or by the number of gate and expert parameters."""
    if options.lse_solver != "auto":
        return options.lse_solver
    zeros = model.zeros()
    free = (model.gate.to_free(zeros.gate), model.expert.to_free(zeros.expert))
    size = sum(np.size(v) for v in jax.tree_util.tree_leaves(free))
    return "lm" if size <= LM_MAX_PARAMETERS else "lbfgs"


def lse(model: MixtureOfExperts, X, y, weights, params: MoEParams, bounds,
        options: FitOptions, constrain=None, limit=None):
    """Returns (params, n_iter, converged, history); history holds minus the mean squared
    error (so that every estimator maximises its objective). `constrain(params) -> params`,
    when given, is applied to every iterate (a profile: some entries functions of others; the
    entries it overwrites keep their start values)."""
    gate, expert = model.gate, model.expert
    total = jnp.sum(weights)
    sw = jnp.sqrt(weights)
    free0 = (gate.to_free(params.gate), expert.to_free(params.expert))
    vec0, unravel = ravel_pytree(free0)
    lo, _ = ravel_pytree((gate.to_free(bounds[0].gate), expert.to_free(bounds[0].expert)))
    hi, _ = ravel_pytree((gate.to_free(bounds[1].gate), expert.to_free(bounds[1].expert)))

    def to_params(vec):
        g, e = unravel(vec)
        p = params._replace(gate=gate.from_free(g), expert=expert.from_free(e))
        return p if constrain is None else constrain(p)

    def residuals(vec):
        return sw * (y - model.mean(to_params(vec), X))

    def sse(vec):
        r = residuals(vec)
        return jnp.where(jnp.all(jnp.isfinite(r)), jnp.sum(r**2), jnp.inf)

    def step(state):
        vec, mu = state
        r = residuals(vec)
        s0 = jnp.sum(r**2)
        J = jax.jacfwd(residuals)(vec)  # (n, P)
        JTJ = J.T @ J
        g = J.T @ r
        D = jnp.diag(JTJ) + options.ridge * jnp.trace(JTJ) / JTJ.shape[0] + 1e-300

        def candidate(mu):
            delta = jnp.linalg.solve(JTJ + mu * jnp.diag(D), -g)
            return jnp.clip(vec + delta, lo, hi)

        def cond(c):
            mu, s, tries = c
            return (s >= s0) & (tries < 12)

        def body(c):
            mu, _, tries = c
            mu = mu * 4.0
            return mu, sse(candidate(mu)), tries + 1

        mu, s, _ = jax.lax.while_loop(cond, body, (mu, sse(candidate(mu)), 0))
        ok = s < s0
        new_vec = jnp.where(ok, candidate(mu), vec)
        new_mu = jnp.where(ok, jnp.maximum(mu / 3.0, 1e-12), mu)
        return (new_vec, new_mu), -s0 / total

    if solver(model, options) == "lm":
        (vec, _), n_iter, converged, history = iterate(step, (vec0, jnp.asarray(1e-3)),
                                                       options.max_iter, options.tol, floor=0.0,
                                                       limit=limit)
    else:
        init, lbfgs_step = projected_lbfgs(lambda v: sse(v) / total, lo, hi)

        def lbfgs(state):
            vec, opt_state, value = lbfgs_step(*state)
            return (vec, opt_state), -value

        (vec, _), n_iter, converged, history = iterate(lbfgs, (vec0, init(vec0)),
                                                       options.max_iter, options.tol, floor=0.0,
                                                       limit=limit)
    out = to_params(vec)
    mse = sse(vec) / total
    var = jnp.clip(mse, bounds[0].noise.var, bounds[1].noise.var)
    return out._replace(noise=out.noise._replace(var=var)), n_iter, converged, history
