"""Expert mean functions h(x, eta) (docs/models.md, "Experts").

Every expert maps X (n_samples, n_features) and parameters with a leading expert axis of
length k to means (n_samples, k). `m_step` declares EM's expert update (fit/em.py):
"least_squares" for experts linear in their parameters (`linear`, `polynomial`, `constant`),
which expose `design(X)` (n_samples, m) with means = design(X) @ coef.T and are solved in
closed form (weighted least squares); "gauss_newton" (damped Gauss-Newton steps) otherwise;
"likelihood" (classification experts: the weighted log-likelihood of the labels, maximised
by the generic step).

Test truths have three rows (top-K truths use three experts); they are not negations of each
other: with complementary sigmoid gates that would make regression models unidentifiable
(f = h (2 sigmoid - 1) has many parametrisations).
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import jax
import jax.numpy as jnp

from moestat.activations import get_activation
from moestat.errors import InputError
from moestat.parts import (
    AffineCoefficients,
    IntegerArgument,
    Part,
    affine_features,
    affine_monomials,
)


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

    m_step: ClassVar[str] = "gauss_newton"  # or "least_squares" (see the module docstring)
    categorical: ClassVar[bool] = False  # a law of a label (`log_probs`), not a mean
    # how the mean follows y -> c y + m (moestat/standardise.py): (fields multiplied by c,
    # field to which m is added), None when the mean cannot follow (the response then keeps
    # the user's scale)
    y_fields: ClassVar[tuple | None] = None
    design = None  # (X) -> (n_samples, m) for experts linear in their parameters
    design_monomials = None  # (d) -> the design's columns as variable-index tuples

    def mean(self, params, X):
        return self.design(X) @ self.to_coef(params).T

    def row_mean(self, params, X, i):
        """Expert i's mean (n_samples,) from its own parameters `params` (leading axis 1):
        what EM's per-expert Gauss-Newton step differentiates."""
        return self.mean(params, X)[:, 0]

    def gauge_dimensions(self, k: int) -> int:
        """Directions of the free coordinates of k experts that leave every mean unchanged
        and that `to_free` keeps (what a parameter count for BIC leaves out)."""
        return 0

    def for_gate(self, gate) -> Expert:
        """This expert as used under `gate` (a per-family expert takes the gate's K1)."""
        return self

    def family(self, name: str) -> Expert:
        """The expert of one family ("shared" or "routed") of a shared-expert model."""
        return self


@dataclass(frozen=True)
class LinearExpert(AffineCoefficients, Expert):
    """h(x) = a^T x + b."""

    name: ClassVar[str] = "linear"
    Params: ClassVar[type] = AffineParams
    affine_fields: ClassVar[tuple] = ("a", "b")
    x_fields: ClassVar[tuple] = ("a", "b")
    y_fields: ClassVar[tuple] = (("a", "b"), "b")
    m_step: ClassVar[str] = "least_squares"
    test_truths: ClassVar[dict] = {"linear": {"a": [[2.0], [-1.0], [1.0]], "b": [1.0, -0.5, 0.0]}}

    def shapes(self, k, d):
        return {"a": (k, d), "b": (k,)}

    design = staticmethod(affine_features)  # [x, 1]
    design_monomials = staticmethod(affine_monomials)


@dataclass(frozen=True)
class PolynomialExpert(IntegerArgument, Expert):
    """h(x) = sum_{|m| <= p} c_m x^m over monomials ordered by degree (constant first), then
    lexicographically in the variable indices (see `monomials`)."""

    name: ClassVar[str] = "polynomial"
    argument: ClassVar[str] = "P"
    Params: ClassVar[type] = PolynomialParams
    m_step: ClassVar[str] = "least_squares"
    test_truths: ClassVar[dict] = {"polynomial:2": {
        "coef": [[1.0, 2.0, -1.0], [-1.0, -1.0, 1.5], [0.0, 1.0, 1.0]]}}
    argument_field, argument_default, argument_minimum = "degree", 2, 0
    degree: int = 2

    def __post_init__(self):
        if not isinstance(self.degree, int) or self.degree < 0:
            raise InputError(f"polynomial degree must be an integer >= 0, got {self.degree!r}")

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
    x_fields: ClassVar[tuple] = ()
    y_fields: ClassVar[tuple] = (("b",), "b")
    m_step: ClassVar[str] = "least_squares"
    test_truths: ClassVar[dict] = {"constant": {"b": [2.0, -2.0, 0.0]}}

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
class ActivatedExpert(Expert):
    """An activation of an index: h(x) = act(u(x)), act in sigmoid / tanh / relu / gelu."""

    argument: ClassVar[str] = "ACT"
    activation: str = "tanh"

    def __post_init__(self):
        get_activation(self.activation)

    @classmethod
    def from_spec(cls, argument):
        if argument == "identity":
            raise InputError(f"{cls.name} expert needs a nonlinear activation, got 'identity'")
        return cls(activation=argument or "tanh")

    @property
    def label(self):
        return f"{self.name}:{self.activation}"


@dataclass(frozen=True)
class RidgeExpert(ActivatedExpert):
    """h(x) = act(a^T x + b)."""

    name: ClassVar[str] = "ridge"
    Params: ClassVar[type] = AffineParams
    x_fields: ClassVar[tuple] = ("a", "b")  # act(a x + b)
    # row 2 (used by top-K, k = 3) stays apart from rows 0 and 1 where they share a region
    test_truths: ClassVar[dict] = {
        "ridge:sigmoid": {"a": [[3.0], [-2.0], [0.5]], "b": [0.5, -1.0, -2.0]},
        "ridge:tanh": {"a": [[2.0], [-1.5], [0.5]], "b": [0.5, -1.0, -1.5]},
        "ridge:relu": {"a": [[2.0], [-1.5], [0.5]], "b": [0.5, -1.0, 1.5]},
        "ridge:gelu": {"a": [[2.0], [-1.5], [0.5]], "b": [0.5, -1.0, 1.5]},
    }

    def shapes(self, k, d):
        return {"a": (k, d), "b": (k,)}

    def mean(self, params, X):
        return get_activation(self.activation)(X @ params.a.T + params.b)


class ScaledRidgeParams(NamedTuple):
    a: jax.Array  # (k, d)
    b: jax.Array  # (k,)
    c: jax.Array  # (k,) amplitude


POSITIVELY_HOMOGENEOUS = ("relu",)  # act(s u) = s act(u) for s > 0
SCALE_GAUGED = POSITIVELY_HOMOGENEOUS + ("identity",)  # c act(a x + b) = (c s) act((a x + b) / s)


@dataclass(frozen=True)
class ScaledRidgeExpert(ActivatedExpert):
    """h(x) = c act(a^T x + b), an amplitude times a ridge (the shared-expert paper's
    kappa2 ReLU(kappa1 x + kappa0)). For a positively homogeneous act (relu) only
    (c ||a||, a / ||a||, b / ||a||) is identified: `canonicalize` brings parameters to the
    gauge ||a|| = 1, which the losses compare (the fit's scale along that ray is free).

    ``scaled_ridge:ACT/ROUTED`` gives the two families of a ``shared:K1:INNER`` gate their
    own activation: ACT for the K1 shared experts, ROUTED for the routed ones (ROUTED may be
    ``identity``: c (a^T x + b), kept in the gauge c = 1, a linear expert). The model binds
    K1 from its gate (`for_gate`)."""

    name: ClassVar[str] = "scaled_ridge"
    argument: ClassVar[str] = "ACT[/ROUTED]"
    Params: ClassVar[type] = ScaledRidgeParams
    x_fields: ClassVar[tuple] = ("a", "b")
    test_truths: ClassVar[dict] = {
        "scaled_ridge:tanh": {"a": [[2.0], [-1.5], [0.5]], "b": [0.5, -1.0, -1.5],
                              "c": [1.5, -1.0, 2.0]}}
    routed_activation: str | None = None
    n_shared: int | None = None  # K1 of the model's shared gate, with `routed_activation`

    def __post_init__(self):
        get_activation(self.activation)
        if self.routed_activation is not None:
            get_activation(self.routed_activation)

    @classmethod
    def from_spec(cls, argument):
        shared, _, routed = (argument or "tanh").partition("/")
        expert = super().from_spec(shared)
        return dataclasses.replace(expert, routed_activation=routed) if routed else expert

    @property
    def label(self):
        tail = f"/{self.routed_activation}" if self.routed_activation else ""
        return f"{self.name}:{self.activation}{tail}"

    def for_gate(self, gate):
        if self.routed_activation is None:
            return self
        k1 = getattr(gate, "n_shared", None)
        if k1 is None:
            raise InputError(f"expert {self.label} has one activation per family: it needs a "
                             f"shared:K1:INNER gate, got {gate.label!r}")
        return dataclasses.replace(self, n_shared=k1)

    def gauge_dimensions(self, k):
        """One per expert whose activation has a scale gauge (relu: ||a|| = 1, identity:
        c = 1)."""
        scaled = [a in SCALE_GAUGED for a in (self.activation, self.routed_activation)]
        if self.routed_activation is None:
            return k * scaled[0]
        k1 = min(self.n_shared, k)
        return k1 * scaled[0] + (k - k1) * scaled[1]

    def family(self, name):
        if self.routed_activation is None:
            return self
        act = self.activation if name == "shared" else self.routed_activation
        return ScaledRidgeExpert(activation=act)

    def shapes(self, k, d):
        return {"a": (k, d), "b": (k,), "c": (k,)}

    def _shared_rows(self, rows):
        """Boolean mask over expert indices `rows`: True where the expert is shared."""
        if self.n_shared is None:
            raise InputError(f"expert {self.label} has one activation per family: build its "
                             "model with a shared:K1:INNER gate")
        return rows < self.n_shared

    def _activate(self, U, rows):
        act = get_activation(self.activation)
        if self.routed_activation is None:
            return act(U)
        return jnp.where(self._shared_rows(rows), act(U),
                         get_activation(self.routed_activation)(U))

    def mean(self, params, X):
        rows = jnp.arange(params.c.shape[0])
        return params.c * self._activate(X @ params.a.T + params.b, rows)

    def row_mean(self, params, X, i):
        return params.c[0] * self._activate(X @ params.a[0] + params.b[0], i)

    def canonicalize(self, params):
        out = _ridge_gauge(params, self.activation)
        if self.routed_activation is None:
            return out
        routed = _ridge_gauge(params, self.routed_activation)
        shared = self._shared_rows(jnp.arange(params.c.shape[0]))
        return type(params)(*(jnp.where(shared.reshape((-1,) + (1,) * (u.ndim - 1)), u, v)
                              for u, v in zip(out, routed, strict=True)))


def _ridge_gauge(params, activation):
    """c act(a x + b) in its gauge: ||a|| = 1 for relu, c = 1 for identity, else as given."""
    if activation == "identity":
        c = params.c
        return params._replace(a=params.a * c[:, None], b=params.b * c, c=jnp.ones_like(c))
    if activation not in POSITIVELY_HOMOGENEOUS:
        return params
    s = jnp.linalg.norm(params.a, axis=1)
    s = jnp.where(s > 0, s, 1.0)
    return params._replace(a=params.a / s[:, None], b=params.b / s, c=params.c * s)


@dataclass(frozen=True)
class RidgeNoBiasExpert(ActivatedExpert):
    """h(x) = act(eta^T x) (no bias), the contaminated models' expert."""

    name: ClassVar[str] = "ridge_nobias"
    Params: ClassVar[type] = RidgeNoBiasParams
    test_truths: ClassVar[dict] = {"ridge_nobias:tanh": {"eta": [[2.0], [-1.5], [1.0]]}}

    def shapes(self, k, d):
        return {"eta": (k, d)}

    def mean(self, params, X):
        return get_activation(self.activation)(X @ params.eta.T)


class MultinomialParams(NamedTuple):
    eta: jax.Array  # (k, R - 1, d) class slopes (the last class is the reference)
    tau: jax.Array  # (k, R - 1) class intercepts


EXPERT_LOGIT_BOUND = 50.0  # |eta|, |tau| box of multinomial experts (separable labels)


@dataclass(frozen=True)
class MultinomialExpert(IntegerArgument, Expert):
    """Multinomial-logistic expert over R classes (classification MoE, arXiv 2310.14188):
    log p_i(l | x) = log softmax_l(eta_il . x + tau_il), the last class the reference
    (eta_iR, tau_iR = 0). Its output is a law of the label, not a mean: `log_probs` (n, k, R)
    with the `categorical` likelihood (noise.py). EM's expert step maximises
    sum_t R_ti log p_i(y_t | x_t) on the observed labels (a weighted multinomial-logit fit)."""

    name: ClassVar[str] = "multinomial"
    argument: ClassVar[str] = "R"
    Params: ClassVar[type] = MultinomialParams
    m_step: ClassVar[str] = "likelihood"
    categorical: ClassVar[bool] = True
    x_fields: ClassVar[tuple] = ("eta", "tau")  # eta_l . x + tau_l per class
    test_truths: ClassVar[dict] = {"multinomial:3": {
        "eta": [[[2.0], [-1.0]], [[-2.0], [1.5]], [[0.5], [2.0]]],
        "tau": [[0.5, -0.5], [0.0, 1.0], [-1.0, 0.5]]}}
    argument_field, argument_default, argument_minimum = "n_classes", 2, 2
    n_classes: int = 2

    def shapes(self, k, d):
        return {"eta": (k, self.n_classes - 1, d), "tau": (k, self.n_classes - 1)}

    def field_bounds(self, field, scale):
        return -EXPERT_LOGIT_BOUND, EXPERT_LOGIT_BOUND

    def log_probs(self, params, X):
        """log p_i(l | x), shape (n_samples, k, R)."""
        z = jnp.einsum("nd,krd->nkr", X, params.eta) + params.tau
        z = jnp.concatenate([z, jnp.zeros(z.shape[:2] + (1,), z.dtype)], axis=-1)
        return jax.nn.log_softmax(z, axis=-1)

    def mean(self, params, X):
        """E[label | x, expert i] with labels 0..R-1, shape (n_samples, k) (a summary only)."""
        return jnp.exp(self.log_probs(params, X)) @ jnp.arange(self.n_classes, dtype=X.dtype)
