"""Quadratic gates (docs/models.md, "Gates"): the logits x^T A_i x + beta1_i^T x + beta0_i of
one self-attention row read as a mixture of experts (moestat.attention.moe_view).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from moestat.gates import SigmoidGate, SoftmaxGate


class QuadraticGateParams(NamedTuple):
    A: jax.Array  # (k, d, d) symmetric quadratic forms
    beta1: jax.Array  # (k, d)
    beta0: jax.Array  # (k,)


def _symmetric(A):
    return 0.5 * (A + jnp.swapaxes(A, -1, -2))


def _quadratic_logits(params, X):
    return jnp.einsum("na,kab,nb->nk", X, _symmetric(params.A), X) + X @ params.beta1.T \
        + params.beta0


def quadratic_monomials(d: int) -> list[tuple[int, ...]]:
    """The logits' monomials: [(a, b) for a <= b], [(0,), ..., (d-1,)], [()]."""
    a, b = np.triu_indices(d)
    return [(int(i), int(j)) for i, j in zip(a, b, strict=True)] + \
        [(j,) for j in range(d)] + [()]


@dataclass(frozen=True)
class QuadraticSoftmaxGate(SoftmaxGate):
    """w_i(x) = softmax_i(x^T A_i x + beta1_i^T x + beta0_i); only the symmetric part of A_i
    matters, and it is what is reported."""

    name: ClassVar[str] = "quadratic_softmax"
    Params: ClassVar[type] = QuadraticGateParams
    gauge: ClassVar[tuple] = ("A", "beta1", "beta0")
    x_fields: ClassVar[None] = None  # x^T A x: not affine in x
    test_truths: ClassVar[dict] = {"quadratic_softmax": {
        "A": [[[2.0]], [[0.0]]], "beta1": [[1.0], [0.0]], "beta0": [-1.0, 0.0]}}

    def shapes(self, k, d):
        return {"A": (k, d, d), "beta1": (k, d), "beta0": (k,)}

    def canonicalize(self, params):
        return super().canonicalize(params._replace(A=_symmetric(params.A)))

    def logits(self, params, X):
        return _quadratic_logits(params, X)

    def logit_features(self, X):
        """(n_samples, d(d+1)/2 + d + 1): [x_a x_b for a <= b, x, 1]."""
        a, b = np.triu_indices(X.shape[1])
        return jnp.concatenate([X[:, a] * X[:, b], X, jnp.ones((X.shape[0], 1), X.dtype)], axis=1)

    def logit_monomials(self, d: int) -> list[tuple[int, ...]]:
        return quadratic_monomials(d)

    def to_coef(self, params):
        d = params.beta1.shape[1]
        a, b = np.triu_indices(d)
        quad = _symmetric(params.A)[:, a, b] * jnp.where(jnp.asarray(a == b), 1.0, 2.0)
        return jnp.concatenate([quad, params.beta1, params.beta0[:, None]], axis=1)

    def from_coef(self, coef, params):
        k, d = params.beta1.shape
        a, b = np.triu_indices(d)
        m = len(a)
        vals = coef[:, :m] * jnp.where(jnp.asarray(a == b), 1.0, 0.5)
        A = jnp.zeros((k, d, d)).at[:, a, b].set(vals).at[:, b, a].set(vals)
        return params._replace(A=A, beta1=coef[:, m : m + d], beta0=coef[:, -1])


@dataclass(frozen=True)
class QuadraticSigmoidGate(SigmoidGate):
    """w_i(x) = sigmoid(x^T A_i x + beta1_i^T x + beta0_i), not normalised."""

    name: ClassVar[str] = "quadratic_sigmoid"
    Params: ClassVar[type] = QuadraticGateParams
    x_fields: ClassVar[None] = None  # x^T A x: not affine in x
    test_truths: ClassVar[dict] = {"quadratic_sigmoid": {
        "A": [[[1.5]], [[-1.0]]], "beta1": [[1.0], [0.5]], "beta0": [-0.5, 1.0]}}

    def shapes(self, k, d):
        return {"A": (k, d, d), "beta1": (k, d), "beta0": (k,)}

    def canonicalize(self, params):
        return params._replace(A=_symmetric(params.A))

    def logits(self, params, X):
        return _quadratic_logits(params, X)

    def logit_monomials(self, d: int) -> list[tuple[int, ...]]:
        return quadratic_monomials(d)
