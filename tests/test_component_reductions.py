"""Reductions over the component axis (component_reductions.py) equal the library reductions."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from moestat import component_reductions as reductions


@pytest.mark.parametrize("K", [1, 2, 5, reductions.UNROLL_MAX + 1])
def test_logsumexp_and_total_equal_the_library(K):
    a = jax.random.normal(jax.random.PRNGKey(K), (50, K)) * 30.0
    a = a.at[3, 0].set(-jnp.inf)  # a zero weight (top-K) in one entry
    a = a.at[4].set(-jnp.inf)  # a row of zero weights: -inf, as the library gives
    np.testing.assert_allclose(reductions.logsumexp(a), jax.nn.logsumexp(a, axis=-1),
                               rtol=1e-14)
    b = jnp.where(jnp.isfinite(a), a, 0.0)
    np.testing.assert_allclose(reductions.total(b), jnp.sum(b, axis=-1), rtol=1e-13,
                               atol=1e-12)


def test_logsumexp_gradient_is_the_softmax():
    a = jax.random.normal(jax.random.PRNGKey(0), (7, 3)) * 50.0
    g = jax.grad(lambda a: jnp.sum(reductions.logsumexp(a)))(a)
    np.testing.assert_allclose(g, jax.nn.softmax(a, axis=-1), rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("K", [1, 2, 5, reductions.UNROLL_MAX + 1])
def test_normalize_log_equals_the_two_exponential_form(K):
    """Shared exponentials give the softmax and logsumexp of the library to rounding; a -inf
    entry gets weight 0, a row of -inf gives NaN weights and -inf (as exp(a - logsumexp))."""
    a = jax.random.normal(jax.random.PRNGKey(K), (50, K)) * 30.0
    a = a.at[3, 0].set(-jnp.inf)
    a = a.at[4].set(-jnp.inf)
    resp, ll = reductions.normalize_log(a)
    lse = jax.nn.logsumexp(a, axis=-1)
    np.testing.assert_allclose(ll, lse, rtol=1e-14)
    ok = np.isfinite(np.asarray(lse))
    np.testing.assert_allclose(resp[ok], jnp.exp(a - lse[:, None])[ok], rtol=1e-13,
                               atol=1e-300)
    np.testing.assert_allclose(jnp.sum(resp[ok], axis=-1), 1.0, rtol=1e-14)
    if K > 1:
        assert float(resp[3, 0]) == 0.0
    assert np.all(np.isnan(np.asarray(resp[4]))) and float(ll[4]) == -np.inf
