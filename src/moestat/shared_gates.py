"""Shared and routed experts (DeepSeekMoE, arXiv 2505.10860) and the normalized sigmoid gate.

* ``nsigmoid``: w_i(x) = sigmoid(z_i) / sum_j sigmoid(z_j), z_i = beta1_i . x + beta0_i — a
  normalised gate with no translation invariance, so no gauge: every row is free.
* ``shared:K1:INNER``: components [K1 shared experts, k - K1 routed experts] with weights

      w_i(x) = 1/2 omega_i              (i < K1, omega = softmax(beta0[:K1]), input-free)
      w_i(x) = 1/2 g_{i - K1}(x)        (routed: the INNER gate on rows K1..k-1)

  so that p(y | x) = 1/2 sum_shared omega_i f_i + 1/2 sum_routed g_i(x) f_i. The parameters
  are INNER's fields over all k rows: the shared rows hold the shared logits in beta0 (the
  last shared logit pinned at 0) and 0 in every other field, neither of them free.

The Voronoi losses of a shared-expert model match atoms within each family (`families`):
shared atoms to true shared atoms, routed to routed (docs/losses.md).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from moestat.errors import InputError
from moestat.gates import Gate, LinearGateParams, divide_sigmoid_weights
from moestat.parts import integer_argument

LOG_HALF = float(np.log(0.5))


@dataclass(frozen=True)
class NormalizedSigmoidGate(Gate):
    """w_i(x) = sigmoid(beta1_i . x + beta0_i) / sum_j sigmoid(beta1_j . x + beta0_j).

    No shift of the logits leaves the weights unchanged, so no row is pinned. The weight an
    intercept stands for in the Voronoi losses is the gate's weight at x = 0,
    sigmoid(beta0_i) / sum_j sigmoid(beta0_j): additive over the copies of a split atom, and
    identified even where the intercepts are not (beta1 = 0 leaves a curve of intercepts with
    the same weights)."""

    name: ClassVar[str] = "nsigmoid"
    Params: ClassVar[type] = LinearGateParams
    x_fields: ClassVar[tuple] = ("beta1", "beta0")
    test_truths: ClassVar[dict] = {"nsigmoid": {"beta1": [[3.0], [-2.0]], "beta0": [0.5, 1.0]}}

    def shapes(self, k, d):
        return {"beta1": (k, d), "beta0": (k,)}

    def logits(self, params, X):
        return X @ params.beta1.T + params.beta0

    def log_weights(self, params, X):
        ls = jax.nn.log_sigmoid(self.logits(params, X))
        return ls - jax.nn.logsumexp(ls, axis=-1, keepdims=True)

    def intercept_weight(self, beta0):
        s = jax.nn.sigmoid(beta0)
        return s / jnp.sum(s)

    def split(self, params, assignment):
        """Copies share the slopes; their intercepts divide sigmoid(beta0) among them."""
        return divide_sigmoid_weights(super().split(params, assignment), assignment)


class WeightsParams(NamedTuple):
    beta0: jax.Array  # (k,) log-weights


@dataclass(frozen=True)
class ConstantWeightsGate(Gate):
    """w_i = exp(beta0_i) with the beta0 given as log-weights (no gauge): the shared family of
    a shared-expert model as the Voronoi losses see it. Not registered."""

    name: ClassVar[str] = "constant_weights"
    Params: ClassVar[type] = WeightsParams

    def shapes(self, k, d):
        return {"beta0": (k,)}

    def log_weights(self, params, X):
        return jnp.broadcast_to(params.beta0, (X.shape[0], params.beta0.shape[0]))


ROUTED_GATES = ("softmax", "nsigmoid", "laplace", "topk_softmax", "cosine")


@dataclass(frozen=True)
class SharedRoutedGate(Gate):
    """Shared + routed experts, spec ``shared:K1:INNER`` (module docstring); ``shared`` alone
    is ``shared:1:softmax``. INNER is a normalised gate with an intercept beta0 and one row
    per expert in every field (softmax, nsigmoid, laplace, topk_softmax:K, cosine:K:TAU)."""

    name: ClassVar[str] = "shared"
    argument: ClassVar[str] = "K1:INNER"
    test_truths: ClassVar[dict] = {
        "shared:1:softmax": {"beta1": [[0.0], [3.0], [0.0]], "beta0": [0.0, 0.5, 0.0]},
        "shared:1:nsigmoid": {"beta1": [[0.0], [3.0], [-2.0]], "beta0": [0.0, 0.5, 1.0]},
    }
    n_shared: int = 1
    inner: Gate = None

    @classmethod
    def from_spec(cls, argument):
        from moestat.registry import make_gate

        k_text, _, inner_spec = (argument or "").partition(":")
        k1 = integer_argument(cls, k_text or None, default=1, minimum=1)
        inner = make_gate(inner_spec or "softmax")
        if inner.name not in ROUTED_GATES:
            raise InputError(f"shared needs a routed gate among {', '.join(ROUTED_GATES)}; "
                             f"got {inner.label!r}")
        return cls(n_shared=k1, inner=inner)

    @property
    def label(self):
        return f"{self.name}:{self.n_shared}:{self.inner.label}"

    @property
    def Params(self):  # noqa: N802 - the part contract's name
        return self.inner.Params

    @property
    def m_step(self):
        """ECME on the likelihood where the routed gate needs it (top-K, cosine)."""
        sparse = self.inner.m_step in ("likelihood", "active_set_newton")
        return "likelihood" if sparse else "generic"

    @property
    def d2_overfitted_exponents(self):
        return self.inner.d2_overfitted_exponents

    @property
    def shift_invariant(self):
        return ()  # the families align their own gauges (losses.match)

    def check(self, n_experts):
        if n_experts <= self.n_shared:
            raise InputError(f"shared:{self.n_shared} needs n_experts > {self.n_shared} (at "
                             f"least one routed expert), got {n_experts}")
        self.inner.check(n_experts - self.n_shared)

    def shapes(self, k, d):
        return self.inner.shapes(k, d)

    # ---- the two blocks ---------------------------------------------------------------------
    def routed(self, params):
        return type(params)(*(v[self.n_shared:] for v in params))

    def join(self, shared_beta0, routed):
        """Parameters from the shared logits (K1,) and the routed block's parameters."""
        out = {}
        for f, v in routed._asdict().items():
            head = (shared_beta0 if f == "beta0"
                    else jnp.zeros((self.n_shared,) + v.shape[1:], v.dtype))
            out[f] = jnp.concatenate([head, v])
        return self.Params(**out)

    def log_weights(self, params, X):
        shared = jax.nn.log_softmax(params.beta0[: self.n_shared])
        routed = self.inner.log_weights(self.routed(params), X)
        shared = jnp.broadcast_to(shared, (X.shape[0], self.n_shared))
        return LOG_HALF + jnp.concatenate([shared, routed], axis=1)

    def canonicalize(self, params):
        b0 = params.beta0[: self.n_shared]
        return self.join(b0 - b0[-1], self.inner.canonicalize(self.routed(params)))

    def to_free(self, params):
        free = self.inner.to_free(self.routed(params))
        shared = params.beta0[: self.n_shared - 1]
        return free._replace(beta0=jnp.concatenate([shared, free.beta0]))

    def from_free(self, free):
        s = self.n_shared - 1
        routed = self.inner.from_free(free._replace(beta0=free.beta0[s:]))
        return self.join(jnp.concatenate([free.beta0[:s], jnp.zeros(1)]), routed)

    def split(self, params, assignment):
        """Atoms from a truth with K1* shared atoms: fitted shared atom i copies true shared
        atom assignment[i] (i < K1), routed ones copy routed ones; copies divide the weight."""
        a = np.asarray(assignment)
        k1_true = int(a[: self.n_shared].max()) + 1
        if a[self.n_shared:].min() < k1_true:
            raise InputError(f"shared:{self.n_shared}: the first {self.n_shared} fitted atoms "
                             "copy shared true atoms and the others routed ones; assignment "
                             f"{a.tolist()} mixes them")
        shared = a[: self.n_shared]
        counts = np.bincount(shared)[shared]
        b0 = params.beta0[jnp.asarray(shared)] - jnp.log(jnp.asarray(counts, float))
        true_routed = type(params)(*(v[k1_true:] for v in params))
        return self.join(b0, self.inner.split(true_routed, a[self.n_shared:] - k1_true))

    def families(self, model, params):
        """[(name, model, params)] of the shared family (input-free weights omega, given as
        log omega) and the routed family (the INNER gate), each with its experts and noise."""
        k1 = self.n_shared

        def rows(part_params, sl):
            return type(part_params)(*(v[sl] for v in part_params))

        out = []
        for name, sl, gate, gp in (
                ("shared", slice(0, k1), ConstantWeightsGate(),
                 WeightsParams(jax.nn.log_softmax(params.gate.beta0[:k1]))),
                ("routed", slice(k1, model.n_experts), self.inner, self.routed(params.gate))):
            sub = dataclasses.replace(model, gate=gate, expert=model.expert.family(name),
                                      n_experts=sl.stop - sl.start)
            noise = params.noise if model.noise.shared else rows(params.noise, sl)
            out.append((name, sub, type(params)(gp, rows(params.expert, sl), noise)))
        return out
