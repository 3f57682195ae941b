"""The iterate-until-converged loop shared by all estimators (one `lax.while_loop`)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def converged_test(new, old, tol, floor: float = 1.0):
    """Relative objective change: |new - old| <= tol * max(|old|, floor)."""
    return jnp.abs(new - old) <= tol * jnp.maximum(jnp.abs(old), floor)


def iterate(step, state, max_iter: int, tol: float, floor: float = 1.0, limit=None):
    """Run `step(state) -> (state, objective_of_input_state)` until converged, at most
    `max_iter` iterations — or `limit` (<= max_iter, may be traced: one compiled program then
    serves a short and a full run; history keeps max_iter entries).

    `floor` keeps the relative test meaningful for objectives that cross 0 (a mean
    log-likelihood: floor 1); a mean squared error is > 0 and may be tiny (low noise), so least
    squares uses floor 0 — a purely relative test.

    Returns (state, n_iter, converged, history) with history (max_iter,) holding the objective
    of each visited state (NaN afterwards). Convergence compares consecutive objectives. A
    state whose objective is not finite stops the loop, and the last state with a finite
    objective is returned instead (not converged): no step can turn a fit into NaN.
    """
    history = jnp.full((max_iter,), jnp.nan)
    stop = max_iter if limit is None else jnp.minimum(limit, max_iter)

    def cond(carry):
        _, _, i, _, done, _ = carry
        return (i < stop) & ~done

    def body(carry):
        state, good, i, prev, _, hist = carry
        new_state, obj = step(state)
        ok = jnp.isfinite(obj)
        good = jax.tree_util.tree_map(lambda s, g: jnp.where(ok, s, g), state, good)
        done = ((i > 0) & converged_test(obj, prev, tol, floor)) | ~ok
        return new_state, good, i + 1, obj, done, hist.at[i].set(obj)

    init = (state, state, jnp.asarray(0), jnp.asarray(jnp.nan), jnp.asarray(False), history)
    state, good, n_iter, last, done, history = jax.lax.while_loop(cond, body, init)
    ok = jnp.isfinite(last)
    state = jax.tree_util.tree_map(lambda s, g: jnp.where(ok, s, g), state, good)
    return state, n_iter, done & ok, history
