"""A mixture-of-experts model: gate x expert x noise (+ an optional frozen expert).

Two kinds (docs/models.md):

* ``mixture`` — probabilistic MoE: p(y | x) = sum_i w_i(x) f(y | h_i(x), v_i), normalised gate.
* ``regression`` — deterministic MoE: y = f(x) + eps, f(x) = sum_i w_i(x) h_i(x),
  eps ~ noise(0, v) with one shared variance v.
* ``classification`` — a mixture whose experts give the law of a label in 0..R-1:
  P(y = l | x) = sum_i w_i(x) p_i(l | x) (a categorical expert, the `categorical` likelihood).

Contaminated models (gates declaring `frozen_expert`: `contaminated`, `input_free`) have one
trainable *prompt* expert and a frozen (known, not estimated) expert; components are ordered
[prompt, frozen].

`MixtureOfExperts` holds structure only; parameters are `MoEParams` pytrees (gate, expert,
noise), each a NamedTuple whose leaves carry a leading expert axis where they are per expert.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from moestat import component_reductions as reductions
from moestat.errors import InputError
from moestat.experts import Expert
from moestat.gates import Gate
from moestat.noise import Noise
from moestat.parts import Params, freeze, thaw
from moestat.registry import make_expert, make_gate, make_noise

KINDS = ("mixture", "regression", "classification")


class MoEParams(NamedTuple):
    gate: Params
    expert: Params
    noise: Params


@dataclass(frozen=True)
class FrozenExpert:
    """A known (pre-trained) expert: noise(y | h0(x, eta0), v0), never estimated."""

    expert: Expert
    noise: Noise
    expert_params: Params  # frozen (hashable) copy, leading expert axis of length 1
    noise_params: Params

    @classmethod
    def create(cls, expert, noise, expert_params: dict, var: float) -> FrozenExpert:
        """`expert_params` maps field -> value for one expert (no expert axis), e.g.
        {"eta": [1, 0, 0]}; `var` is the frozen noise variance."""
        expert, noise = make_expert(expert), make_noise(noise)
        fields = expert.Params._fields
        missing = set(fields) - set(expert_params)
        unknown = set(expert_params) - set(fields)
        if missing or unknown:
            raise InputError(
                f"frozen expert {expert.label} needs parameters {list(fields)}, got "
                f"{sorted(expert_params)}"
            )
        ep = expert.Params(**{f: np.asarray(expert_params[f], float)[None] for f in fields})
        if not np.isfinite(var) or var <= 0:
            raise InputError(f"frozen expert variance must be > 0, got {var!r}")
        return cls(expert, noise, freeze(ep), freeze(noise.Params(var=np.asarray([var]))))

    def mean(self, X):
        """h0(x), shape (n_samples,)."""
        return self.expert.mean(thaw(self.expert_params), X)[:, 0]

    def log_density(self, X, y):
        """log f0(y | h0(x), v0), shape (n_samples,)."""
        return self.noise.log_density(y, self.mean(X), thaw(self.noise_params).var[0])

    def sample(self, key, X):
        return self.noise.sample(key, self.mean(X), thaw(self.noise_params).var[0])


@dataclass(frozen=True)
class MixtureOfExperts:
    """Structure of a MoE model. See module docstring for the two kinds."""

    gate: Gate
    expert: Expert
    noise: Noise
    n_experts: int
    n_features: int
    kind: str = "mixture"
    frozen: FrozenExpert | None = field(default=None)

    @classmethod
    def create(cls, gate="softmax", expert="linear", noise="gaussian", *, n_experts: int,
               n_features: int, kind: str = "mixture", frozen: FrozenExpert | None = None
               ) -> MixtureOfExperts:
        """Build from part specs (``"ridge:tanh"`` etc.); validates the combination."""
        if kind not in KINDS:
            raise InputError(f"kind must be one of {KINDS}, got {kind!r}")
        gate = make_gate(gate)
        return cls(gate, make_expert(expert).for_gate(gate),
                   make_noise(noise, shared=(kind == "regression")),
                   int(n_experts), int(n_features), kind, frozen)

    def __post_init__(self):
        if self.n_experts < 1:
            raise InputError(f"n_experts must be >= 1, got {self.n_experts}")
        if self.n_features < 1:
            raise InputError(f"n_features must be >= 1, got {self.n_features}")
        if self.kind not in KINDS:
            raise InputError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.noise.shared != (self.kind == "regression"):
            raise InputError("regression models share one noise variance; mixtures have one per "
                             "expert")
        if (self.kind == "classification") != self.expert.categorical or \
                self.expert.categorical != self.noise.categorical:
            raise InputError("classification models pair a categorical expert (multinomial:R) "
                             "with the categorical likelihood, and only they do")
        if self.kind == "classification" and self.frozen is not None:
            raise InputError("classification models have no frozen expert")
        if self.kind != "regression" and not self.gate.normalized:
            raise InputError(f"gate {self.gate.label!r} is not normalised: use it in a "
                             "regression model (estimator 'lse')")
        if self.gate.frozen_expert and (self.frozen is None or self.n_experts != 1):
            raise InputError(f"gate {self.gate.name!r} needs a frozen expert and n_experts=1")
        if not self.gate.frozen_expert and self.frozen is not None:
            raise InputError("a frozen expert needs a gate for one (contaminated, input_free)")
        self.gate.check(self.n_experts)
        if self.expert.for_gate(self.gate) != self.expert:
            raise InputError(f"expert {self.expert.label} is bound to another gate than "
                             f"{self.gate.label!r}: build the model with create()")

    # ---- structure --------------------------------------------------------------------------
    @property
    def n_components(self) -> int:
        """Mixture components: the trainable experts plus the frozen one, if any."""
        return self.n_experts + (self.frozen is not None)

    def describe(self) -> str:
        s = f"{self.kind} MoE: gate={self.gate.label}, expert={self.expert.label}, " \
            f"noise={self.noise.name}, k={self.n_experts}, d={self.n_features}"
        return s + (f", frozen={self.frozen.expert.label}/{self.frozen.noise.name}"
                    if self.frozen else "")

    def zeros(self) -> MoEParams:
        k, d = self.n_experts, self.n_features
        return MoEParams(self.gate.zeros(self.n_components, d), self.expert.zeros(k, d),
                         self.noise.zeros(k, d))

    def shapes(self) -> MoEParams:
        """The parameters' shapes and dtypes (jax.ShapeDtypeStruct leaves), computed without
        running anything: an eager `zeros()` compiles small programs in a fresh process."""
        return jax.eval_shape(self.zeros)

    def parts(self):
        return (self.gate, self.expert, self.noise)

    def _map(self, method, *trees):
        return MoEParams(*(getattr(p, method)(*t) for p, *t in zip(self.parts(), *trees,
                                                                   strict=True)))

    def canonicalize(self, params: MoEParams) -> MoEParams:
        """Gauge-fixed parameters (softmax family: last gate row = 0; symmetric A)."""
        return self._map("canonicalize", params)

    def to_free(self, params: MoEParams) -> MoEParams:
        """Unconstrained gauge-free coordinates for generic optimisers."""
        return self._map("to_free", params)

    def from_free(self, free: MoEParams) -> MoEParams:
        return self._map("from_free", free)

    def bounds(self, y_var: float) -> tuple[MoEParams, MoEParams]:
        """Default box (lower, upper); variances relative to `y_var` (docs/models.md)."""
        k, d, K = self.n_experts, self.n_features, self.n_components
        g = self.gate.bounds(K, d, y_var)
        e = self.expert.bounds(k, d, y_var)
        n = self.noise.bounds(k, d, y_var)
        return MoEParams(g[0], e[0], n[0]), MoEParams(g[1], e[1], n[1])

    def split(self, params: MoEParams, assignment) -> MoEParams:
        """Over-specified start: fitted atom i copies true atom assignment[i]."""
        return MoEParams(self.gate.split(params.gate, assignment),
                         self.expert.split(params.expert, assignment),
                         self.noise.split(params.noise, assignment))

    # ---- named parameters -------------------------------------------------------------------
    def named(self, params: MoEParams) -> dict[str, np.ndarray]:
        """{"gate.beta1": (k, d), "gate.beta0": (k,), "expert.a": ..., "noise.var": ...}."""
        out = {}
        for part, p in zip(("gate", "expert", "noise"), params, strict=True):
            for f, v in p._asdict().items():
                out[f"{part}.{f}"] = np.asarray(v)
        return out

    def from_named(self, named: dict) -> MoEParams:
        """Inverse of `named`; every name of the model must be present, no other."""
        template = self.zeros()
        want = set(self.named(template))
        if set(named) != want:
            raise InputError(f"parameters must be exactly {sorted(want)}, got {sorted(named)}")
        blocks = []
        for part, p in zip(("gate", "expert", "noise"), template, strict=True):
            vals = {}
            for f, v in p._asdict().items():
                a = jnp.asarray(named[f"{part}.{f}"], dtype=jnp.float64)
                if a.shape != v.shape:
                    raise InputError(f"parameter {part}.{f} must have shape {v.shape}, got "
                                     f"{a.shape}")
                vals[f] = a
            blocks.append(type(p)(**vals))
        return MoEParams(*blocks)

    def n_free_coordinates(self) -> int:
        """Length of the unconstrained coordinates `to_free` returns (what an optimiser moves)."""
        free = jax.eval_shape(self.to_free, self.shapes())  # shapes only: nothing runs
        return int(sum(math.prod(v.shape) for v in jax.tree_util.tree_leaves(free)))

    def n_free_parameters(self) -> int:
        """Number of free (gauge-fixed) real parameters."""
        return self.n_free_coordinates() - self.expert.gauge_dimensions(self.n_experts)

    # ---- the model --------------------------------------------------------------------------
    def gate_weights(self, params: MoEParams, X) -> jax.Array:
        """w_i(x), shape (n_samples, n_components)."""
        return self.gate.weights(params.gate, X)

    def log_gate_weights(self, params: MoEParams, X) -> jax.Array:
        return self.gate.log_weights(params.gate, X)

    def expert_means(self, params: MoEParams, X) -> jax.Array:
        """h_i(x), shape (n_samples, n_components) (frozen expert last)."""
        m = self.expert.mean(params.expert, X)
        if self.frozen is not None:
            m = jnp.concatenate([m, self.frozen.mean(X)[:, None]], axis=1)
        return m

    def mean(self, params: MoEParams, X) -> jax.Array:
        """E[y | x] = sum_i w_i(x) h_i(x) (regression function), shape (n_samples,)."""
        return jnp.sum(self.gate_weights(params, X) * self.expert_means(params, X), axis=1)

    def class_log_probs(self, params: MoEParams, X) -> jax.Array:
        """log P(y = l | x) = log sum_i w_i(x) p_i(l | x), shape (n_samples, R)
        (classification)."""
        lp = self.log_gate_weights(params, X)[:, :, None] + self.expert.log_probs(
            params.expert, X)
        return jax.nn.logsumexp(lp, axis=1)

    def component_log_density(self, params: MoEParams, X, y) -> jax.Array:
        """log f(y | h_i(x), v_i) per component, shape (n_samples, n_components) (mixture;
        classification: log p_i(y | x))."""
        if self.kind == "classification":
            return self.noise.log_density(y, self.expert.log_probs(params.expert, X))
        m = self.expert.mean(params.expert, X)
        logf = self.noise.log_density(y[:, None], m, params.noise.var)
        if self.frozen is not None:
            logf = jnp.concatenate([logf, self.frozen.log_density(X, y)[:, None]], axis=1)
        return logf

    def log_joint(self, params: MoEParams, X, y) -> jax.Array:
        """log w_i(x) + log f_i(y | x), shape (n_samples, n_components) (mixture)."""
        return self.log_gate_weights(params, X) + self.component_log_density(params, X, y)

    def log_prob(self, params: MoEParams, X, y) -> jax.Array:
        """log p(y | x), shape (n_samples,)."""
        if self.kind == "regression":
            return self.noise.log_density(y, self.mean(params, X), params.noise.var)
        return reductions.logsumexp(self.log_joint(params, X, y))

    def sample(self, key, params: MoEParams, X) -> jax.Array:
        """Draw y | x for every row of X, shape (n_samples,)."""
        if self.kind == "regression":
            return self.noise.sample(key, self.mean(params, X), params.noise.var)
        kz, ky, kf = jax.random.split(key, 3)
        z = jax.random.categorical(kz, self.log_gate_weights(params, X), axis=1)
        if self.kind == "classification":
            y = self.noise.sample(ky, self.expert.log_probs(params.expert, X))
            return jnp.take_along_axis(y, z[:, None], axis=1)[:, 0]
        m = self.expert.mean(params.expert, X)
        var = jnp.broadcast_to(params.noise.var, m.shape)
        y = self.noise.sample(ky, m, var)
        if self.frozen is not None:
            y = jnp.concatenate([y, self.frozen.sample(kf, X)[:, None]], axis=1)
        return jnp.take_along_axis(y, z[:, None], axis=1)[:, 0]
