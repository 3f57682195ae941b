"""Noise laws of y around an expert mean (docs/models.md, "Noise"), and the categorical
likelihood of a label under a classification expert.

Both are parametrised by their **variance** v > 0 (never a standard deviation):
gaussian: N(y | m, v); laplace: exp(-|y - m| / s) / (2 s) with s = sqrt(v / 2), so that
Var = 2 s^2 = v. Mixture models carry one variance per expert, shape (k,); regression models
one shared variance, shape ().
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import jax
import jax.numpy as jnp

from moestat.parts import Part

VAR_BOUNDS = (1e-6, 1e3)  # default variance box, relative to the response variance


class NoiseParams(NamedTuple):
    var: jax.Array  # (k,) per expert (mixture) or () shared (regression)


@dataclass(frozen=True)
class Noise(Part):
    Params: ClassVar[type] = NoiseParams
    positive: ClassVar[tuple] = ("var",)
    x_fields: ClassVar[tuple] = ()  # var scales with the response's square (standardise.py)
    # EM's expert and variance updates need only weighted sums of 1, x-monomials, y x and y^2
    # (the one-pass EM of fit/em_statistics.py)
    sufficient_statistics: ClassVar[bool] = False
    categorical: ClassVar[bool] = False  # the likelihood of a label (classification models)
    shared: bool = False  # one variance for all experts (regression models)

    def shapes(self, k, d):
        return {"var": () if self.shared else (k,)}

    def zeros(self, k, d):
        return NoiseParams(var=jnp.ones(() if self.shared else (k,)))

    def field_bounds(self, field, scale):
        return VAR_BOUNDS[0] * scale, VAR_BOUNDS[1] * scale

    def split(self, params, assignment):
        return params if self.shared else super().split(params, assignment)


@dataclass(frozen=True)
class GaussianNoise(Noise):
    """log N(y | m, v) = -0.5 (log(2 pi v) + (y - m)^2 / v)."""

    name: ClassVar[str] = "gaussian"
    sufficient_statistics: ClassVar[bool] = True

    def log_density(self, y, mean, var):
        return -0.5 * (jnp.log(2 * jnp.pi * var) + (y - mean) ** 2 / var)

    irls_depends_on_residual: ClassVar[bool] = False

    def irls_weights(self, resid, var):
        """Weights turning the expert M-step into weighted least squares: exactly 1/v."""
        return 1.0 / var

    def variance_update(self, resid, R, var_bounds):
        """argmax_v sum_t R_ti log N(r_ti | 0, v_i): v_i = sum R r^2 / sum R, in its box."""
        var = jnp.sum(R * resid**2, axis=0) / jnp.maximum(R.sum(axis=0), 1e-300)
        return jnp.clip(var, *var_bounds)

    def sample(self, key, mean, var):
        return mean + jnp.sqrt(var) * jax.random.normal(key, jnp.shape(mean))


@dataclass(frozen=True)
class LaplaceNoise(Noise):
    """log Laplace(y | m, s) = -log(2 s) - |y - m| / s, s = sqrt(v / 2)."""

    name: ClassVar[str] = "laplace"

    def log_density(self, y, mean, var):
        s = jnp.sqrt(var / 2.0)
        return -jnp.log(2.0 * s) - jnp.abs(y - mean) / s

    irls_depends_on_residual: ClassVar[bool] = True

    def irls_weights(self, resid, var):
        """Majorise-minimise weights 1 / (c s), c = |r_old|: |r| <= r^2 / (2c) + c / 2, with
        equality at r_old, so weighted least squares with these weights cannot decrease the
        Laplace log-density."""
        s = jnp.sqrt(var / 2.0)
        return 1.0 / (jnp.maximum(jnp.abs(resid), 1e-8 * s) * s)

    def variance_update(self, resid, R, var_bounds):
        """argmax_s sum R log Laplace(r | 0, s): s = sum R |r| / sum R; v = 2 s^2, in its box."""
        s = jnp.sum(R * jnp.abs(resid), axis=0) / jnp.maximum(R.sum(axis=0), 1e-300)
        return jnp.clip(2.0 * s**2, *var_bounds)

    def sample(self, key, mean, var):
        return mean + jnp.sqrt(var / 2.0) * jax.random.laplace(key, jnp.shape(mean))


class NoParams(NamedTuple):
    """A likelihood without parameters of its own."""


@dataclass(frozen=True)
class CategoricalNoise(Noise):
    """log p(y = l) = log_probs[..., l] for labels l in 0..R-1 (classification models): the
    expert gives the whole law (`log_probs`, (..., R)), the likelihood adds no parameter."""

    name: ClassVar[str] = "categorical"
    Params: ClassVar[type] = NoParams
    positive: ClassVar[tuple] = ()
    categorical: ClassVar[bool] = True

    def shapes(self, k, d):
        return {}

    def zeros(self, k, d):
        return NoParams()

    def log_density(self, y, log_probs, var=None):
        """y (n,) labels (any real dtype holding integers), log_probs (n, k, R) -> (n, k)."""
        idx = jnp.broadcast_to(y.astype(jnp.int32)[:, None, None], log_probs.shape[:2] + (1,))
        return jnp.take_along_axis(log_probs, idx, axis=-1)[..., 0]

    def sample(self, key, log_probs, var=None):
        """One label per row and expert, shape log_probs.shape[:-1] (float labels)."""
        return jax.random.categorical(key, log_probs, axis=-1).astype(jnp.float64)
