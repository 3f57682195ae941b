"""Reductions over the mixture-component axis (the last axis of (n_samples, K) arrays).

K is small (2 to ~10) and known when tracing. XLA on CPU reduces such a short minor axis
element by element (no vectorisation across rows): the E-step's logsumexp over K = 2 costs
~1.3x the same sum written as K column-wise elementwise operations (2e6 rows,
benchmarks/em_layout.py). Up to UNROLL_MAX components the reductions below are written as K
column slices combined elementwise; larger K falls back to the library reduction.
`normalize_log` gives the E-step's normalised weights and normaliser from one set of
exponentials.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

UNROLL_MAX = 16  # beyond this the unrolled graph grows more than the reduction costs


def _columns(a):
    return [a[..., i] for i in range(a.shape[-1])]


def logsumexp(a):
    """log sum_i exp(a[..., i]) over the last axis; -inf rows give -inf (as jax.nn.logsumexp,
    whose gradient (softmax) it also has)."""
    if a.shape[-1] > UNROLL_MAX:
        return jax.nn.logsumexp(a, axis=-1)
    cols = _columns(a)
    m = functools.reduce(jnp.maximum, cols)
    m = jax.lax.stop_gradient(jnp.where(jnp.isfinite(m), m, 0.0))
    return m + jnp.log(sum(jnp.exp(c - m) for c in cols))


def total(a):
    """sum_i a[..., i] over the last axis."""
    if a.shape[-1] > UNROLL_MAX:
        return jnp.sum(a, axis=-1)
    return sum(_columns(a))


def normalize_log(a):
    """(exp(a - logsumexp(a)), logsumexp(a)) over the last axis, sharing the exponentials:
    with m the row maximum and e_i = exp(a_i - m), the normalised weights are e_i / sum_j e_j
    and the logsumexp is m + log sum_j e_j (one exp per entry instead of two; equal to the
    two-exp form up to rounding). The E-step's responsibilities and log-likelihood: 12-21%
    faster contaminated EM fits than the two-exp form. A row of -inf gives NaN weights and
    -inf, as the two-exp form."""
    if a.shape[-1] > UNROLL_MAX:
        ll = jax.nn.logsumexp(a, axis=-1)
        return jnp.exp(a - ll[..., None]), ll
    cols = _columns(a)
    m = functools.reduce(jnp.maximum, cols)
    m = jax.lax.stop_gradient(jnp.where(jnp.isfinite(m), m, 0.0))
    e = [jnp.exp(c - m) for c in cols]
    s = sum(e)
    return jnp.stack([ei / s for ei in e], axis=-1), m + jnp.log(s)
