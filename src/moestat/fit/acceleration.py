"""Running an EM map to convergence, plainly or accelerated by SQUAREM.

EM converges linearly, at a rate set by the fraction of missing information; where the
likelihood is nearly flat along some direction (a prompt close to its frozen expert, an
over-fitted atom) that rate approaches 1 and plain EM crawls. SQUAREM (Varadhan & Roland 2008,
scheme S3) extrapolates along the EM path: from u0 (unconstrained coordinates) two EM steps
give u1, u2; with r = u1 - u0, v = u2 - u1 - r and alpha = -||r|| / ||v|| (at most -1),

    u' = u0 - 2 alpha r + alpha^2 v,

clipped into the box, followed by one stabilising EM step from u'. The extrapolation is kept
only when the log-likelihood at u' is at least that at u1; otherwise the iteration ends at u2.
Either way the log-likelihood never decreases. One accelerated iteration costs three EM steps
(max_iter counts accelerated iterations).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from moestat.fit.loop import iterate
from moestat.fit.result import FitOptions
from moestat.model import MixtureOfExperts, MoEParams


def run_em(step, params: MoEParams, model: MixtureOfExperts, bounds, options: FitOptions,
           limit=None):
    """Iterate `step(params) -> (EM update, mean log-likelihood at params)` to convergence
    (options.accelerate: "squarem" or "none"; `limit`: fit/loop.py `iterate`). Returns
    (params, n_iter, converged, history)."""
    if options.accelerate == "none":
        return iterate(step, params, options.max_iter, options.tol, limit=limit)
    _, unravel = ravel_pytree(model.to_free(params))
    lo = ravel_pytree(model.to_free(bounds[0]))[0]
    hi = ravel_pytree(model.to_free(bounds[1]))[0]

    def free(p):
        return ravel_pytree(model.to_free(p))[0]

    def squarem_step(p0):
        p1, ll0 = step(p0)
        p2, ll1 = step(p1)
        u0, u1, u2 = free(p0), free(p1), free(p2)
        r = u1 - u0
        v = u2 - u1 - r
        alpha = -jnp.sqrt(jnp.sum(r * r) / jnp.maximum(jnp.sum(v * v), 1e-300))
        alpha = jnp.minimum(alpha, -1.0)
        u = jnp.clip(u0 - 2 * alpha * r + alpha**2 * v, lo, hi)
        u = jnp.where(jnp.all(jnp.isfinite(u)), u, u2)
        p3, ll_ext = step(model.from_free(unravel(u)))
        keep = jnp.isfinite(ll_ext) & (ll_ext >= ll1)
        new = jax.tree_util.tree_map(lambda a, b: jnp.where(keep, a, b), p3, p2)
        return new, ll0

    return iterate(squarem_step, params, options.max_iter, options.tol, limit=limit)
