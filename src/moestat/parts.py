"""The common contract of model parts (gates, experts, noises).

A part is a small frozen (hashable) dataclass holding *structure only*; its parameters are an
immutable `NamedTuple` pytree passed in and returned (parameters apart from structure, as in
dynamax). Every field of a part's parameters is declared once in `shapes`, which also fixes its
leading expert axis, so that generic code (optimisers, bounds, names, splitting) needs no
per-part knowledge:

* `positive` fields are optimised as log(value), `unit` fields as logit(value);
* `gauge` fields have their last row pinned to 0 (softmax translation invariance);
* `bounds` gives the default box (lower, upper) per field.

A part also declares what the rest of moestat asks of it, so that a new part is one class and
one line of `registry.py`:

* `name` and `from_spec(argument)`: how a spec ``name`` or ``name:argument`` builds it;
* `m_step`: how EM updates it (gates: `fit/em.py`, experts: `fit/em.py`);
* `x_fields` (and, for experts, `y_fields`): how its parameters follow an affine change of
  the feature (response) scale, so that a fit on standardised data reports on the user's;
* `test_truths`: spec -> parameter values of a well-identified truth (d = 1), which the shared
  contract test (`tests/test_contract.py`) fits for every registered part.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from moestat.errors import InputError

Params = Any  # a NamedTuple of arrays

INF = float("inf")


@dataclass(frozen=True)
class Part(ABC):
    """Base class of gates, experts and noises."""

    Params: ClassVar[type[NamedTuple]]
    name: ClassVar[str]
    argument: ClassVar[str | None] = None  # what follows ``name:`` in a spec (e.g. "K")
    test_truths: ClassVar[dict[str, dict]] = {}  # spec -> {field: value}, see module docstring
    positive: ClassVar[tuple[str, ...]] = ()
    unit: ClassVar[tuple[str, ...]] = ()
    gauge: ClassVar[tuple[str, ...]] = ()
    # how the part sees x, for fits on standardised features (moestat/standardise.py): the
    # (slopes, intercept) fields through which x enters as slopes . x + intercept, () for a
    # part that does not see x, None otherwise (the fit then keeps the user's feature scale)
    x_fields: ClassVar[tuple[str, ...] | None] = None

    @property
    def label(self) -> str:
        """The registry name, with its argument if any (e.g. ``ridge:tanh``)."""
        return self.name

    @classmethod
    def from_spec(cls, argument: str | None) -> Part:
        """The part named by ``name`` or ``name:argument``; parts without an argument refuse
        one (InputError)."""
        if argument is not None:
            raise InputError(f"{cls.name!r} takes no argument, got {cls.name}:{argument}")
        return cls()

    @classmethod
    def spec_help(cls) -> str:
        """How `moestat list` shows the part: ``name`` or ``name:ARGUMENT``."""
        return cls.name if cls.argument is None else f"{cls.name}:{cls.argument}"

    # ---- structure -------------------------------------------------------------------------
    @abstractmethod
    def shapes(self, n_components: int, n_features: int) -> dict[str, tuple[int, ...]]:
        """Shape of each parameter field for `n_components` experts in dimension `n_features`."""

    def zeros(self, n_components: int, n_features: int) -> Params:
        shapes = self.shapes(n_components, n_features)
        return self.Params(**{f: jnp.zeros(s) for f, s in shapes.items()})

    def bounds(self, n_components: int, n_features: int, scale: float) -> tuple[Params, Params]:
        """Default box (lower, upper) per field; `scale` is the response variance."""
        shapes = self.shapes(n_components, n_features)
        lo, hi = {}, {}
        for f, s in shapes.items():
            a, b = self.field_bounds(f, scale)
            lo[f], hi[f] = jnp.full(s, a), jnp.full(s, b)
        return self.Params(**lo), self.Params(**hi)

    def field_bounds(self, field: str, scale: float) -> tuple[float, float]:
        if field in self.unit:
            return 1e-8, 1.0 - 1e-8
        if field in self.positive:
            return 1e-12, INF
        return -INF, INF

    # ---- gauge and unconstrained coordinates ------------------------------------------------
    def canonicalize(self, params: Params) -> Params:
        """Bring parameters to the gauge (gauge fields: subtract the last row)."""
        if not self.gauge:
            return params
        shifted = {f: getattr(params, f) - getattr(params, f)[-1] for f in self.gauge}
        return params._replace(**shifted)

    def to_free(self, params: Params) -> Params:
        """Unconstrained gauge-free coordinates: log / logit transforms, last gauge row dropped."""
        out = {}
        for f, v in params._asdict().items():
            if f in self.gauge:
                v = v[:-1]
            if f in self.positive:
                v = jnp.log(v)
            elif f in self.unit:
                v = jnp.log(v) - jnp.log1p(-v)
            out[f] = v
        return self.Params(**out)

    def from_free(self, free: Params) -> Params:
        out = {}
        for f, v in free._asdict().items():
            if f in self.positive:
                v = jnp.exp(v)
            elif f in self.unit:
                v = jax.nn.sigmoid(v)
            if f in self.gauge:
                v = jnp.concatenate([v, jnp.zeros((1,) + v.shape[1:], v.dtype)], axis=0)
            out[f] = v
        return self.Params(**out)

    # ---- over-specified initialisation ------------------------------------------------------
    def split(self, params: Params, assignment: np.ndarray) -> Params:
        """Parameters of k fitted atoms from k* true ones: atom i copies true atom assignment[i].

        Default: every field is indexed along its leading (expert) axis; gates override this to
        divide a split atom's weight among its copies.
        """
        idx = jnp.asarray(assignment)
        return self.Params(*(v[idx] for v in params))


def affine_features(X):
    """[x, 1] (n_samples, d + 1): the features of a model affine in x."""
    return jnp.concatenate([X, jnp.ones((X.shape[0], 1), X.dtype)], axis=1)


def affine_monomials(d: int) -> list[tuple[int, ...]]:
    """The columns of `affine_features` as variable-index tuples: [(0,), ..., (d-1,), ()]."""
    return [(j,) for j in range(d)] + [()]


class AffineCoefficients:
    """Mixin of parts whose per-expert map is affine in x, slopes . x + intercept: their
    coefficient rows are [slopes, intercept] (k, d + 1), on the features `affine_features`.
    `affine_fields` names the (slopes, intercept) parameter fields."""

    affine_fields: ClassVar[tuple[str, str]]

    def to_coef(self, params):
        slopes, intercepts = (getattr(params, f) for f in self.affine_fields)
        return jnp.concatenate([slopes, intercepts[:, None]], axis=1)

    def from_coef(self, coef, params):
        slopes, intercepts = self.affine_fields
        return params._replace(**{slopes: coef[:, :-1], intercepts: coef[:, -1]})


class IntegerArgument:
    """Mixin of parts whose spec argument is an integer (``polynomial:3``, ``topk_softmax:2``),
    stored in the dataclass field `argument_field` (default `argument_default`, at least
    `argument_minimum`)."""

    argument_field: ClassVar[str]
    argument_default: ClassVar[int]
    argument_minimum: ClassVar[int]

    @classmethod
    def from_spec(cls, argument):
        value = integer_argument(cls, argument, cls.argument_default, cls.argument_minimum)
        return cls(**{cls.argument_field: value})

    @property
    def label(self) -> str:
        return f"{self.name}:{getattr(self, self.argument_field)}"


def integer_argument(part: type[Part], argument: str | None, default: int,
                     minimum: int) -> int:
    """The integer argument of a spec such as ``topk_softmax:2`` (default when absent)."""
    if argument is None:
        return default
    try:
        value = int(argument)
    except ValueError:
        raise InputError(f"{part.name} needs an integer argument, got {argument!r}") from None
    if value < minimum:
        raise InputError(f"{part.name} needs an argument >= {minimum}, got {value}")
    return value


def thaw(params: Params) -> Params:
    """Arrays from a frozen (nested-tuple) parameter record."""
    return type(params)(*(jnp.asarray(v, dtype=jnp.float64) for v in params))


def freeze(params: Params) -> Params:
    """Hashable nested-tuple copy of a parameter record (for structure that must be static)."""

    def tup(a):
        a = np.asarray(a, dtype=np.float64)
        return float(a) if a.ndim == 0 else tuple(tup(x) for x in a)

    return type(params)(*(tup(v) for v in params))
