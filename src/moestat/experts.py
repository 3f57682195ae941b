"""Expert mean functions h(x, eta) (models.md §2).

Every expert maps X (n_samples, n_features) and parameters with a leading expert axis of
length k to means (n_samples, k). Experts linear in their parameters (`linear`, `polynomial`,
`constant`) expose `design(X)` (n_samples, m) with means = design(X) @ coef.T, which the EM
M-step solves in closed form (weighted least squares); the others get a generic step.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import jax
import jax.numpy as jnp

from moestat.activations import get_activation
from moestat.parts import Part


class AffineParams(NamedTuple):
    a: jax.Array  # (k, d)
    b: jax.Array  # (k,)


class PolynomialParams(NamedTuple):
    coef: jax.Array  # (k, m), one column per monomial of `PolynomialExpert.monomials(d)`


class RidgeNoBiasParams(NamedTuple):
    eta: jax.Array  # (k, d)


class ConstantParams(NamedTuple):
    b: jax.Array  # (k,)


@dataclass(frozen=True)
class Expert(Part):
    """Base expert: `mean(params, X)` -> (n_samples, k)."""

    design = None  # (X) -> (n_samples, m) for experts linear in their parameters
    design_monomials = None  # (d) -> the design's columns as variable-index tuples

    def mean(self, params, X):
        return self.design(X) @ self.to_coef(params).T


@dataclass(frozen=True)
class LinearExpert(Expert):
    """h(x) = a^T x + b."""

    name: ClassVar[str] = "linear"
    Params: ClassVar[type] = AffineParams

    def shapes(self, k, d):
        return {"a": (k, d), "b": (k,)}

    def design(self, X):
        """[x, 1], (n_samples, d + 1)."""
        return jnp.concatenate([X, jnp.ones((X.shape[0], 1), X.dtype)], axis=1)

    def design_monomials(self, d: int) -> list[tuple[int, ...]]:
        """The columns of `design` as variable-index tuples: [(0,), ..., (d-1,), ()]."""
        return [(j,) for j in range(d)] + [()]

    def to_coef(self, params):
        return jnp.concatenate([params.a, params.b[:, None]], axis=1)

    def from_coef(self, coef, params):
        return params._replace(a=coef[:, :-1], b=coef[:, -1])


@dataclass(frozen=True)
class PolynomialExpert(Expert):
    """h(x) = sum_{|m| <= p} c_m x^m over monomials ordered by degree (constant first), then
    lexicographically in the variable indices (see `monomials`)."""

    name: ClassVar[str] = "polynomial"
    Params: ClassVar[type] = PolynomialParams
    degree: int = 2

    def __post_init__(self):
        if not isinstance(self.degree, int) or self.degree < 0:
            from moestat.errors import InputError

            raise InputError(f"polynomial degree must be an integer >= 0, got {self.degree!r}")

    @property
    def label(self):
        return f"polynomial:{self.degree}"

    def monomials(self, d: int) -> list[tuple[int, ...]]:
        """Variable-index tuples, e.g. d=2, p=2: (), (0,), (1,), (0,0), (0,1), (1,1)."""
        out: list[tuple[int, ...]] = []
        for deg in range(self.degree + 1):
            out.extend(itertools.combinations_with_replacement(range(d), deg))
        return out

    def shapes(self, k, d):
        return {"coef": (k, len(self.monomials(d)))}

    def design(self, X):
        cols = [jnp.prod(X[:, list(m)], axis=1) if m else jnp.ones(X.shape[0], X.dtype)
                for m in self.monomials(X.shape[1])]
        return jnp.stack(cols, axis=1)

    def design_monomials(self, d: int) -> list[tuple[int, ...]]:
        return self.monomials(d)

    def to_coef(self, params):
        return params.coef

    def from_coef(self, coef, params):
        return params._replace(coef=coef)


@dataclass(frozen=True)
class ConstantExpert(Expert):
    """h(x) = b (input independent)."""

    name: ClassVar[str] = "constant"
    Params: ClassVar[type] = ConstantParams

    def shapes(self, k, d):
        return {"b": (k,)}

    def design(self, X):
        return jnp.ones((X.shape[0], 1), X.dtype)

    def design_monomials(self, d: int) -> list[tuple[int, ...]]:
        return [()]

    def to_coef(self, params):
        return params.b[:, None]

    def from_coef(self, coef, params):
        return params._replace(b=coef[:, 0])


@dataclass(frozen=True)
class RidgeExpert(Expert):
    """h(x) = act(a^T x + b), act in sigmoid / tanh / relu / gelu."""

    name: ClassVar[str] = "ridge"
    Params: ClassVar[type] = AffineParams
    activation: str = "tanh"

    def __post_init__(self):
        get_activation(self.activation)

    @property
    def label(self):
        return f"ridge:{self.activation}"

    def shapes(self, k, d):
        return {"a": (k, d), "b": (k,)}

    def mean(self, params, X):
        return get_activation(self.activation)(X @ params.a.T + params.b)


@dataclass(frozen=True)
class RidgeNoBiasExpert(Expert):
    """h(x) = act(eta^T x) (no bias), the contaminated paper's expert."""

    name: ClassVar[str] = "ridge_nobias"
    Params: ClassVar[type] = RidgeNoBiasParams
    activation: str = "tanh"

    def __post_init__(self):
        get_activation(self.activation)

    @property
    def label(self):
        return f"ridge_nobias:{self.activation}"

    def shapes(self, k, d):
        return {"eta": (k, d)}

    def mean(self, params, X):
        return get_activation(self.activation)(X @ params.eta.T)


EXPERTS: dict[str, type[Expert]] = {
    e.name: e for e in (LinearExpert, PolynomialExpert, ConstantExpert, RidgeExpert,
                        RidgeNoBiasExpert)
}
