"""EM finished by Newton: EM's robustness far from the optimum, Newton's speed near it.

EM converges linearly at a rate set by the fraction of missing information; where an
over-fitted atom's copies leave the likelihood nearly flat that rate approaches 1 and even
SQUAREM needs thousands of iterations to a tight tolerance. Newton's step on the observed
log-likelihood (fit/mle.py `newton_step`: saddle-free, step-halved, monotone) converges
quadratically at a regular optimum and still geometrically, with ratio about 1/2, along a
singular direction (the hand-over Redner & Walker 1984 recommend). So EM runs until its
relative change is below `options.handover_tol`; then every iteration is a Newton step
followed by one EM iteration, until the relative change of an iteration is below
`options.tol`. The EM iteration keeps the fit moving where the likelihood is not smooth
(the kinks of ReLU experts: Newton's quadratic model fails there and its step is not taken),
so the stopping rule means what EM's does: no iteration of either kind raises the
log-likelihood by more than the tolerance. Every step is monotone. Both phases share the
budget of `max_iter` iterations (n_iter counts both). Needs a model Newton handles (at most
NEWTON_MAX_PARAMS free parameters).
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from moestat.fit.loop import iterate
from moestat.fit.mle import newton_step


def em_then_newton(em_run, model, X, y, weights, params, bounds, options, limit=None):
    """`em_run(model, X, y, weights, params, bounds, options, limit)` (plain or accelerated
    EM) to `options.handover_tol`, then Newton + EM iterations to `options.tol` for the
    iterations left of min(max_iter, limit). Returns (params, n_iter, converged, history):
    history holds EM's objectives, then those of the Newton phase."""
    loose = dataclasses.replace(options, tol=options.handover_tol)
    p1, n1, _, h1 = em_run(model, X, y, weights, params, bounds, loose, limit)
    budget = options.max_iter if limit is None else jnp.minimum(limit, options.max_iter)
    newton = newton_step(model, X, y, weights, bounds, options)
    once = dataclasses.replace(options, max_iter=1)  # one EM iteration, a history of one

    def step(p):
        stepped, _, value, _ = newton(p)
        return em_run(model, X, y, weights, stepped, bounds, once)[0], value

    p2, n2, converged, h2 = iterate(step, p1, options.max_iter, options.tol,
                                    limit=budget - n1)
    i = jnp.arange(options.max_iter)
    history = jnp.where(i < n1, h1, h2[jnp.clip(i - n1, 0, options.max_iter - 1)])
    return p2, n1 + n2, converged, history
