"""Gating functions w_i(x) (models.md §1).

Every gate maps inputs X (n_samples, n_features) to weights (n_samples, n_components).
Normalised gates (softmax family, contaminated, input-free) give log-weights summing to one and
serve mixture (probabilistic) models; sigmoid gates are not normalised and serve regression
models only.

Softmax-family gates fix the last component's gate parameters at 0 (`gauge`). For gates whose
logits are linear in x (softmax, temperature, quadratic) this is a true gauge of the
translation invariance; for the activation gate it is the papers' model convention.

Gates whose logits are linear in their parameters expose `logit_features` / `to_coef` /
`from_coef` (logits = features(X) @ coef.T), which the EM M-step uses for Newton (IRLS) steps;
all others get a generic L-BFGS step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from moestat.activations import get_activation
from moestat.parts import Part

GATE_BOUND = 50.0  # default |beta| and |tau| box for gate coefficients (models.md §5)


class LinearGateParams(NamedTuple):
    beta1: jax.Array  # (k, d) slopes
    beta0: jax.Array  # (k,) intercepts


class TemperatureGateParams(NamedTuple):
    beta1: jax.Array  # (k, d)
    beta0: jax.Array  # (k,)
    tau: jax.Array  # () shared temperature > 0


class QuadraticGateParams(NamedTuple):
    A: jax.Array  # (k, d, d) symmetric quadratic forms
    beta1: jax.Array  # (k, d)
    beta0: jax.Array  # (k,)


class ContaminatedGateParams(NamedTuple):
    beta: jax.Array  # (d,) prompt gate slope
    tau: jax.Array  # () prompt gate intercept


class InputFreeGateParams(NamedTuple):
    lam: jax.Array  # () prompt weight lambda in [0, 1]


@dataclass(frozen=True)
class Gate(Part):
    """Base gate. Subclasses define `log_weights` (normalised) or `weights` (sigmoid)."""

    normalized: ClassVar[bool] = True
    em_gate_objective: ClassVar[str] = "q"  # "q": EM's Q_gate; "likelihood": ECME step

    @property
    def shift_invariant(self) -> tuple:
        """Gate fields whose common shift across experts leaves the weights unchanged (the
        true symmetry the losses align; `gauge` may also hold conventional restrictions)."""
        return self.gauge

    def log_weights(self, params, X):
        """log w_i(x), shape (n_samples, n_components); -inf where a weight is exactly 0."""
        return jnp.log(self.weights(params, X))

    def weights(self, params, X):
        """w_i(x), shape (n_samples, n_components)."""
        return jnp.exp(self.log_weights(params, X))

    def field_bounds(self, field, scale):
        if field in self.unit or field in self.positive:
            return super().field_bounds(field, scale)
        return -GATE_BOUND, GATE_BOUND

    def resp_objective(self, params, X, resp, weights):
        """Gate part of the EM objective: sum_t w_t sum_i r_ti log w_i(x_t).

        `resp` (n_samples, n_components) are responsibilities, `weights` (n_samples,) sample
        weights. Entries with r = 0 contribute 0 even where log w = -inf (top-K); an entry with
        r > 0 and w = 0 makes the objective -inf, as EM's lower bound requires.
        """
        logw = self.log_weights(params, X)
        terms = jnp.where(resp > 0, resp * logw, 0.0)
        return jnp.sum(weights * terms.sum(axis=1))

    # IRLS interface (None when logits are not linear in the parameters)
    logit_features = None
    logit_monomials = None  # (d) -> the columns of logit_features as variable-index tuples


def _split_softmax_intercepts(params, assignment):
    """Copies of a true atom share its slopes and divide its weight: beta0 - log(count).
    Shared scalars (the activation gate's tau) are kept."""
    assignment = np.asarray(assignment)
    counts = np.bincount(assignment)[assignment]
    idx = jnp.asarray(assignment)
    out = type(params)(*(v[idx] if jnp.ndim(v) else v for v in params))
    return out._replace(beta0=out.beta0 - jnp.log(jnp.asarray(counts, dtype=float)))


@dataclass(frozen=True)
class SoftmaxGate(Gate):
    """w_i(x) = softmax_i(beta1_i^T x + beta0_i); gauge beta1_k = beta0_k = 0."""

    name: ClassVar[str] = "softmax"
    Params: ClassVar[type] = LinearGateParams
    gauge: ClassVar[tuple] = ("beta1", "beta0")

    def shapes(self, k, d):
        return {"beta1": (k, d), "beta0": (k,)}

    def logits(self, params, X):
        return X @ params.beta1.T + params.beta0

    def log_weights(self, params, X):
        return jax.nn.log_softmax(self.logits(params, X), axis=-1)

    def logit_features(self, X):
        """(n_samples, d + 1): [x, 1]."""
        return jnp.concatenate([X, jnp.ones((X.shape[0], 1), X.dtype)], axis=1)

    def logit_monomials(self, d: int) -> list[tuple[int, ...]]:
        """The columns of `logit_features` as variable-index tuples: [(0,), ..., (d-1,), ()]."""
        return [(j,) for j in range(d)] + [()]

    def to_coef(self, params):
        return jnp.concatenate([params.beta1, params.beta0[:, None]], axis=1)

    def from_coef(self, coef, params):
        return params._replace(beta1=coef[:, :-1], beta0=coef[:, -1])

    def split(self, params, assignment):
        return _split_softmax_intercepts(params, assignment)


@dataclass(frozen=True)
class TopKSoftmaxGate(SoftmaxGate):
    """Softmax over the K largest logits; the others get weight exactly 0.

    Ties are broken by the lowest index: expert i is active when
    #{j: z_j > z_i} + #{j < i: z_j = z_i} < K.
    """

    name: ClassVar[str] = "topk_softmax"
    # EM's Q is -inf as soon as a boundary moves (points with r > 0 lose their expert), so the
    # gate block maximises the observed log-likelihood instead (ECME, Liu & Rubin 1994)
    em_gate_objective: ClassVar[str] = "likelihood"
    k_active: int = 2
    logit_features = None  # not smooth: generic M-step

    @property
    def label(self):
        return f"topk_softmax:{self.k_active}"

    def active_set_features(self, X):
        """Logit features [x, 1] (logits are linear in the parameters on each active set):
        the EM gate block takes a Newton step with the active sets fixed (fit/em.py)."""
        return SoftmaxGate.logit_features(self, X)

    def active(self, logits):
        k = logits.shape[-1]
        zi, zj = logits[..., :, None], logits[..., None, :]
        lower = jnp.arange(k)[None, :] < jnp.arange(k)[:, None]  # [i, j] = j < i
        rank = jnp.sum(zj > zi, axis=-1) + jnp.sum((zj == zi) & lower, axis=-1)
        return rank < self.k_active

    def log_weights(self, params, X):
        z = self.logits(params, X)
        act = self.active(z)
        zmasked = jnp.where(act, z, -jnp.inf)
        lse = jax.nn.logsumexp(zmasked, axis=-1, keepdims=True)
        return jnp.where(act, z - lse, -jnp.inf)


@dataclass(frozen=True)
class TemperatureSoftmaxGate(Gate):
    """Dense-to-sparse gate: w_i(x) = softmax_i((beta1_i^T x + beta0_i) / tau), tau > 0 shared.

    Note: (beta1, beta0, tau) -> (c beta1, c beta0, c tau) leaves the weights unchanged; see
    docs/design.md.
    """

    name: ClassVar[str] = "temperature_softmax"
    Params: ClassVar[type] = TemperatureGateParams
    gauge: ClassVar[tuple] = ("beta1", "beta0")
    positive: ClassVar[tuple] = ("tau",)

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
        return SoftmaxGate.logit_features(self, X)

    def logit_monomials(self, d: int) -> list[tuple[int, ...]]:
        return SoftmaxGate.logit_monomials(self, d)

    def to_coef(self, params):
        return jnp.concatenate([params.beta1, params.beta0[:, None]], axis=1) / params.tau

    def from_coef(self, coef, params):
        """Ratios back to parameters at the current tau: the weights depend on the ratios
        only, so EM's Newton step never moves tau (any tau on the ray is an MLE)."""
        return params._replace(beta1=coef[:, :-1] * params.tau, beta0=coef[:, -1] * params.tau)

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
    The placement of beta0 is our reconstruction (models.md §1), hence configurable.
    """

    name: ClassVar[str] = "activation_temperature_softmax"
    activation: str = "tanh"
    placement: str = "outside"
    logit_features = None  # logits non-linear in beta1: generic (L-BFGS) gate step

    def __post_init__(self):
        get_activation(self.activation)
        if self.placement not in ("outside", "inside"):
            from moestat.errors import InputError

            raise InputError(f"placement must be 'outside' or 'inside', got {self.placement!r}")

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
            return _split_softmax_intercepts(params, assignment)
        return Part.split(self, params, assignment)


@dataclass(frozen=True)
class SigmoidGate(Gate):
    """w_i(x) = sigmoid(beta1_i^T x + beta0_i), not normalised (regression models only)."""

    name: ClassVar[str] = "sigmoid"
    Params: ClassVar[type] = LinearGateParams
    normalized: ClassVar[bool] = False

    def shapes(self, k, d):
        return {"beta1": (k, d), "beta0": (k,)}

    def logits(self, params, X):
        return X @ params.beta1.T + params.beta0

    def weights(self, params, X):
        return jax.nn.sigmoid(self.logits(params, X))

    def log_weights(self, params, X):
        return jax.nn.log_sigmoid(self.logits(params, X))

    def resp_objective(self, params, X, resp, weights):
        """Independent logistic fits of each gate to soft labels r_ti (initialisation only)."""
        z = self.logits(params, X)
        ll = resp * jax.nn.log_sigmoid(z) + (1 - resp) * jax.nn.log_sigmoid(-z)
        return jnp.sum(weights * ll.sum(axis=1))

    def split(self, params, assignment):
        """Copies divide the true weight: sigmoid(beta0') = sigmoid(beta0) / count."""
        assignment = np.asarray(assignment)
        counts = jnp.asarray(np.bincount(assignment)[assignment], dtype=float)
        copies = super().split(params, assignment)  # every field (A of quadratic gates too)
        w = jax.nn.sigmoid(copies.beta0) / counts
        return copies._replace(beta0=jnp.log(w) - jnp.log1p(-w))


def _quadratic_logits(params, X):
    A = 0.5 * (params.A + jnp.swapaxes(params.A, -1, -2))
    return jnp.einsum("na,kab,nb->nk", X, A, X) + X @ params.beta1.T + params.beta0


@dataclass(frozen=True)
class QuadraticSoftmaxGate(SoftmaxGate):
    """w_i(x) = softmax_i(x^T A_i x + beta1_i^T x + beta0_i); only the symmetric part of A_i
    matters, and it is what is reported."""

    name: ClassVar[str] = "quadratic_softmax"
    Params: ClassVar[type] = QuadraticGateParams
    gauge: ClassVar[tuple] = ("A", "beta1", "beta0")

    def shapes(self, k, d):
        return {"A": (k, d, d), "beta1": (k, d), "beta0": (k,)}

    def canonicalize(self, params):
        params = params._replace(A=0.5 * (params.A + jnp.swapaxes(params.A, -1, -2)))
        return super().canonicalize(params)

    def logits(self, params, X):
        return _quadratic_logits(params, X)

    def logit_features(self, X):
        """(n_samples, d(d+1)/2 + d + 1): [x_a x_b for a <= b, x, 1]."""
        a, b = np.triu_indices(X.shape[1])
        return jnp.concatenate([X[:, a] * X[:, b], X, jnp.ones((X.shape[0], 1), X.dtype)], axis=1)

    def logit_monomials(self, d: int) -> list[tuple[int, ...]]:
        a, b = np.triu_indices(d)
        quad = [(int(i), int(j)) for i, j in zip(a, b, strict=True)]
        return quad + SoftmaxGate.logit_monomials(self, d)

    def to_coef(self, params):
        d = params.beta1.shape[1]
        a, b = np.triu_indices(d)
        A = 0.5 * (params.A + jnp.swapaxes(params.A, -1, -2))
        quad = A[:, a, b] * jnp.where(jnp.asarray(a == b), 1.0, 2.0)
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

    def shapes(self, k, d):
        return {"A": (k, d, d), "beta1": (k, d), "beta0": (k,)}

    def canonicalize(self, params):
        return params._replace(A=0.5 * (params.A + jnp.swapaxes(params.A, -1, -2)))

    def logits(self, params, X):
        return _quadratic_logits(params, X)


@dataclass(frozen=True)
class ContaminatedGate(Gate):
    """Components [prompt, frozen]: w_prompt(x) = sigmoid(beta^T x + tau), w_frozen = 1 - w_prompt.

    A two-expert softmax whose frozen logit is fixed at 0.
    """

    name: ClassVar[str] = "contaminated"
    Params: ClassVar[type] = ContaminatedGateParams

    def shapes(self, k, d):
        return {"beta": (d,), "tau": ()}

    def log_weights(self, params, X):
        z = X @ params.beta + params.tau
        # log sigmoid(+-z) = min(+-z, 0) - log1p(exp(-|z|)): one transcendental pair for both
        t = jnp.log1p(jnp.exp(-jnp.abs(z)))
        return jnp.stack([jnp.minimum(z, 0.0) - t, jnp.minimum(-z, 0.0) - t], axis=1)

    def logit_features(self, X):
        return jnp.concatenate([X, jnp.ones((X.shape[0], 1), X.dtype)], axis=1)

    def logit_monomials(self, d: int) -> list[tuple[int, ...]]:
        return SoftmaxGate.logit_monomials(self, d)

    def to_coef(self, params):
        row = jnp.concatenate([params.beta, params.tau[None]])
        return jnp.stack([row, jnp.zeros_like(row)])

    def from_coef(self, coef, params):
        return params._replace(beta=coef[0, :-1], tau=coef[0, -1])


@dataclass(frozen=True)
class InputFreeGate(Gate):
    """Components [prompt, frozen] with constant weights (lambda, 1 - lambda)."""

    name: ClassVar[str] = "input_free"
    Params: ClassVar[type] = InputFreeGateParams
    unit: ClassVar[tuple] = ("lam",)

    def shapes(self, k, d):
        return {"lam": ()}

    def log_weights(self, params, X):
        row = jnp.stack([jnp.log(params.lam), jnp.log1p(-params.lam)])
        return jnp.broadcast_to(row, (X.shape[0], 2))

    def closed_form_m_step(self, params, X, resp, weights):
        """lambda = weighted mean of the prompt responsibilities (exact EM update)."""
        return params._replace(lam=jnp.sum(weights * resp[:, 0]) / jnp.sum(weights))


GATES: dict[str, type[Gate]] = {
    g.name: g
    for g in (
        SoftmaxGate,
        TopKSoftmaxGate,
        TemperatureSoftmaxGate,
        ActivationTemperatureSoftmaxGate,
        SigmoidGate,
        QuadraticSoftmaxGate,
        QuadraticSigmoidGate,
        ContaminatedGate,
        InputFreeGate,
    )
}

# gates that pair a single trainable prompt with a frozen expert
FROZEN_GATES = ("contaminated", "input_free")
__all__ = ["GATES", "FROZEN_GATES", "Gate", "GATE_BOUND"]
