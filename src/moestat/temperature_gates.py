"""Dense-to-sparse gates (docs/models.md, "Gates"): a softmax with a shared temperature
tau > 0, estimated jointly, plain or after an activation of the slopes' logits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from moestat.activations import get_activation
from moestat.errors import InputError
from moestat.gates import Gate, split_softmax_intercepts
from moestat.parts import Part, affine_features, affine_monomials


class TemperatureGateParams(NamedTuple):
    beta1: jax.Array  # (k, d)
    beta0: jax.Array  # (k,)
    tau: jax.Array  # () shared temperature > 0



@dataclass(frozen=True)
class TemperatureSoftmaxGate(Gate):
    """Dense-to-sparse gate: w_i(x) = softmax_i((beta1_i^T x + beta0_i) / tau), tau > 0 shared.

    Note: (beta1, beta0, tau) -> (c beta1, c beta0, c tau) leaves the weights unchanged; see
    docs/design.md and `to_scale`.
    """

    name: ClassVar[str] = "temperature_softmax"
    Params: ClassVar[type] = TemperatureGateParams
    gauge: ClassVar[tuple] = ("beta1", "beta0")
    x_fields: ClassVar[tuple] = ("beta1", "beta0")  # (beta1 x + beta0) / tau
    positive: ClassVar[tuple] = ("tau",)
    m_step: ClassVar[str] = "newton"
    scale_invariant: ClassVar[bool] = True
    test_truths: ClassVar[dict] = {
        "temperature_softmax": {"beta1": [[3.0], [0.0]], "beta0": [0.5, 0.0], "tau": 1.0}}

    def shapes(self, k, d):
        return {"beta1": (k, d), "beta0": (k,), "tau": ()}

    def field_bounds(self, field, scale):
        if field == "tau":
            return 1e-2, 1e2
        return super().field_bounds(field, scale)

    def log_weights(self, params, X):
        z = (X @ params.beta1.T + params.beta0) / params.tau
        return jax.nn.log_softmax(z, axis=-1)

    def logit_features(self, X):
        """[x, 1]: the logits are linear in the ratios coef = [beta1, beta0] / tau."""
        return affine_features(X)

    logit_monomials = staticmethod(affine_monomials)

    def to_coef(self, params):
        return jnp.concatenate([params.beta1, params.beta0[:, None]], axis=1) / params.tau

    def from_coef(self, coef, params):
        """Ratios back to parameters at the current tau: the weights depend on the ratios
        only, so EM's Newton step never moves tau (any tau on the ray is an MLE)."""
        return params._replace(beta1=coef[:, :-1] * params.tau, beta0=coef[:, -1] * params.tau)

    def to_scale(self, params, reference):
        """`params` moved along the ray of equal weights to tau = reference.tau:
        c (beta1, beta0, tau) with c = tau_ref / tau (what the `*_scaled` metrics compare)."""
        c = reference.tau / params.tau
        return params._replace(beta1=params.beta1 * c, beta0=params.beta0 * c,
                               tau=params.tau * c)

    def split(self, params, assignment):
        idx = jnp.asarray(assignment)
        counts = jnp.asarray(np.bincount(assignment)[np.asarray(assignment)], dtype=float)
        # weight division happens inside the temperature: beta0 -> beta0 - tau log(count)
        return params._replace(
            beta1=params.beta1[idx], beta0=params.beta0[idx] - params.tau * jnp.log(counts)
        )


@dataclass(frozen=True)
class ActivationTemperatureSoftmaxGate(TemperatureSoftmaxGate):
    """Activation dense-to-sparse gate (same parameters and bounds as the temperature gate).

    placement "outside" (default): w_i(x) = softmax_i(act(beta1_i^T x) / tau + beta0_i);
    placement "inside":            w_i(x) = softmax_i(act(beta1_i^T x + beta0_i) / tau).
    The placement of beta0 is our reconstruction (docs/models.md), hence configurable.
    """

    name: ClassVar[str] = "activation_temperature_softmax"
    argument: ClassVar[str] = "ACT"
    m_step: ClassVar[str] = "generic"  # logits non-linear in beta1
    scale_invariant: ClassVar[bool] = False  # act(beta1 x) is not homogeneous in beta1
    x_fields: ClassVar[None] = None  # act(beta1 x) has no intercept to absorb a shift of x
    test_truths: ClassVar[dict] = {"activation_temperature_softmax:tanh": {
        "beta1": [[2.0], [0.0]], "beta0": [0.5, 0.0], "tau": 0.5}}
    activation: str = "tanh"
    placement: str = "outside"
    logit_features = None

    def __post_init__(self):
        get_activation(self.activation)
        if self.placement not in ("outside", "inside"):
            raise InputError(f"placement must be 'outside' or 'inside', got {self.placement!r}")

    @classmethod
    def from_spec(cls, argument):
        return cls(activation=argument or "tanh")

    @property
    def label(self):
        return f"activation_temperature_softmax:{self.activation}"

    def log_weights(self, params, X):
        act = get_activation(self.activation)
        if self.placement == "outside":
            z = act(X @ params.beta1.T) / params.tau + params.beta0
        else:
            z = act(X @ params.beta1.T + params.beta0) / params.tau
        return jax.nn.log_softmax(z, axis=-1)

    @property
    def shift_invariant(self):
        """Only beta0 (outside placement) shifts freely: act(beta1 x) is not translation-
        invariant in beta1, so the gauge on beta1_k is a restriction, not a symmetry."""
        return ("beta0",) if self.placement == "outside" else ()

    def split(self, params, assignment):
        if self.placement == "outside":
            return split_softmax_intercepts(params, assignment)
        return Part.split(self, params, assignment)
