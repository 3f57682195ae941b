"""Box bounds on parameters (docs/models.md, "Parameter space"): projection and the
`at_bound` flag."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def project(params, bounds):
    """Clip every leaf of `params` into [lower, upper] (same pytree structure)."""
    lo, hi = bounds
    return jax.tree_util.tree_map(jnp.clip, params, lo, hi)


def on_bound(params, bounds, rtol: float = 1e-9):
    """True where some finite bound is attained (within rtol of its magnitude)."""
    lo, hi = bounds

    def hit(p, a, b):
        tol_a = rtol * jnp.maximum(jnp.abs(a), 1e-300)
        tol_b = rtol * jnp.maximum(jnp.abs(b), 1e-300)
        return jnp.any((jnp.isfinite(a) & (p <= a + tol_a)) | (jnp.isfinite(b) & (p >= b - tol_b)))

    flags = jax.tree_util.tree_leaves(jax.tree_util.tree_map(hit, params, lo, hi))
    return jnp.any(jnp.stack(flags)) if flags else jnp.asarray(False)


def floored(var, lower, rtol: float = 1e-9):
    """True where a variance sits on its lower bound."""
    return jnp.any(var <= lower * (1 + rtol))
