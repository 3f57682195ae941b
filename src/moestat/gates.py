"""Gating functions w_i(x) (docs/models.md, "Gates").

Every gate maps inputs X (n_samples, n_features) to weights (n_samples, n_components).
Normalised gates (softmax family, contaminated, input-free) give log-weights summing to one and
serve mixture (probabilistic) models; sigmoid gates are not normalised and serve regression
models only.

Softmax-family gates fix the last component's gate parameters at 0 (`gauge`). For gates whose
logits are linear in x (softmax, temperature, quadratic) this is a true gauge of the
translation invariance; for the activation gate it is the papers' model convention.

Each gate declares its EM update in `m_step` (fit/em.py):

* "newton": the logits are linear in the parameters, logits = logit_features(X) @ coef.T
  (`to_coef` / `from_coef`); Newton (IRLS) steps on Q_gate;
* "active_set_newton": the same on each top-K active set, accepted on the likelihood (ECME);
* "likelihood": a generic step on the observed likelihood, experts fixed (ECME: sparse gates
  whose logits are not linear in their parameters);
* "closed_form": `closed_form_m_step` maximises Q_gate exactly;
* "generic": damped Newton with an autodiff Hessian (few parameters) or projected L-BFGS.

The gates of contaminated models (a trainable prompt beside a frozen expert) are in
`prompt_gates.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from moestat.errors import InputError
from moestat.parts import (
    AffineCoefficients,
    IntegerArgument,
    Part,
    affine_features,
    affine_monomials,
    integer_argument,
)

GATE_BOUND = 50.0  # default |beta| and |tau| box for gate coefficients (docs/models.md)


class LinearGateParams(NamedTuple):
    beta1: jax.Array  # (k, d) slopes
    beta0: jax.Array  # (k,) intercepts


@dataclass(frozen=True)
class Gate(Part):
    """Base gate. Subclasses define `log_weights` (normalised) or `weights` (sigmoid)."""

    normalized: ClassVar[bool] = True
    m_step: ClassVar[str] = "generic"  # see the module docstring
    frozen_expert: ClassVar[bool] = False  # components [prompt, frozen expert]: n_experts = 1
    scale_invariant: ClassVar[bool] = False  # (beta, tau) -> c (beta, tau) keeps the weights
    # D2's exponent of a block in an over-fitted cell where the gate's theory fixes it (block
    # -> exponent); blocks not named follow losses.D2_BLOCK_FACTOR * rbar(cell size)
    d2_overfitted_exponents: ClassVar[dict] = {}

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

    def check(self, n_experts: int) -> None:
        """Refuse (InputError) a number of experts this gate cannot serve."""

    def intercept_weight(self, beta0):
        """The weight an intercept stands for in the Voronoi losses: exp(beta0) for normalised
        gates, sigmoid(beta0) for sigmoid gates."""
        return jnp.exp(beta0) if self.normalized else jax.nn.sigmoid(beta0)

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


def split_softmax_intercepts(params, assignment):
    """Copies of a true atom share its slopes and divide its weight: beta0 - log(count).
    Shared scalars (the activation gate's tau) are kept."""
    assignment = np.asarray(assignment)
    counts = np.bincount(assignment)[assignment]
    idx = jnp.asarray(assignment)
    out = type(params)(*(v[idx] if jnp.ndim(v) else v for v in params))
    return out._replace(beta0=out.beta0 - jnp.log(jnp.asarray(counts, dtype=float)))


def divide_sigmoid_weights(copies, assignment):
    """Copies of true atoms (`Part.split`: every field, A of quadratic gates too) that divide
    their atom's weight: sigmoid(beta0') = sigmoid(beta0) / count."""
    assignment = np.asarray(assignment)
    counts = jnp.asarray(np.bincount(assignment)[assignment], dtype=float)
    w = jax.nn.sigmoid(copies.beta0) / counts
    return copies._replace(beta0=jnp.log(w) - jnp.log1p(-w))


def top_k_mask(logits, k_active: int):
    """True for the K largest logits of each row (n, k); ties go to the lowest index: expert i
    is active when #{j: z_j > z_i} + #{j < i: z_j = z_i} < K."""
    k = logits.shape[-1]
    zi, zj = logits[..., :, None], logits[..., None, :]
    lower = jnp.arange(k)[None, :] < jnp.arange(k)[:, None]  # [i, j] = j < i
    rank = jnp.sum(zj > zi, axis=-1) + jnp.sum((zj == zi) & lower, axis=-1)
    return rank < k_active


def masked_log_softmax(logits, active):
    """log softmax over the active entries of each row; -inf (weight exactly 0) elsewhere."""
    lse = jax.nn.logsumexp(jnp.where(active, logits, -jnp.inf), axis=-1, keepdims=True)
    return jnp.where(active, logits - lse, -jnp.inf)


def _safe_norm(v, axis):
    """Euclidean norm with gradient 0 (not NaN) at the zero vector."""
    sq = jnp.sum(v * v, axis=axis)
    return jnp.where(sq > 0, jnp.sqrt(jnp.where(sq > 0, sq, 1.0)), 0.0)


@dataclass(frozen=True)
class SoftmaxGate(AffineCoefficients, Gate):
    """w_i(x) = softmax_i(beta1_i^T x + beta0_i); gauge beta1_k = beta0_k = 0."""

    name: ClassVar[str] = "softmax"
    Params: ClassVar[type] = LinearGateParams
    affine_fields: ClassVar[tuple] = ("beta1", "beta0")
    x_fields: ClassVar[tuple] = ("beta1", "beta0")
    gauge: ClassVar[tuple] = ("beta1", "beta0")
    m_step: ClassVar[str] = "newton"
    test_truths: ClassVar[dict] = {"softmax": {"beta1": [[3.0], [0.0]], "beta0": [0.5, 0.0]}}

    def shapes(self, k, d):
        return {"beta1": (k, d), "beta0": (k,)}

    def logits(self, params, X):
        return X @ params.beta1.T + params.beta0

    def log_weights(self, params, X):
        return jax.nn.log_softmax(self.logits(params, X), axis=-1)

    logit_features = staticmethod(affine_features)  # [x, 1]
    logit_monomials = staticmethod(affine_monomials)

    def split(self, params, assignment):
        return split_softmax_intercepts(params, assignment)


BOUNDED = ("tanh", "sigmoid")  # bounded activations: the modified gate's input maps


@dataclass(frozen=True)
class ModifiedSoftmaxGate(SoftmaxGate):
    """w_i(x) = softmax_i(beta1_i . M(x) + beta0_i), M = ACT elementwise and bounded (tanh,
    sigmoid): the modified softmax gate of arXiv 2310.14188. Its derivative in beta1 carries
    M(x), not x, which breaks the PDE d2u/(d beta1 d b) = du/da that couples a softmax gate
    with a linear expert's slopes. Newton steps on the features [M(x), 1]; M is not affine,
    so fits keep the user's feature scale."""

    name: ClassVar[str] = "modified_softmax"
    argument: ClassVar[str] = "ACT"
    x_fields: ClassVar[tuple | None] = None
    test_truths: ClassVar[dict] = {
        "modified_softmax:tanh": {"beta1": [[3.0], [0.0]], "beta0": [0.5, 0.0]}}
    logit_monomials = None  # not polynomial in x: no one-pass EM
    activation: str = "tanh"

    @classmethod
    def from_spec(cls, argument):
        act = argument or "tanh"
        if act not in BOUNDED:
            raise InputError(f"modified_softmax needs a bounded map, one of {', '.join(BOUNDED)}"
                             f"; got {act!r}")
        return cls(activation=act)

    @property
    def label(self):
        return f"{self.name}:{self.activation}"

    def inputs(self, X):
        from moestat.activations import get_activation

        return get_activation(self.activation)(X)

    def logits(self, params, X):
        return self.inputs(X) @ params.beta1.T + params.beta0

    def logit_features(self, X):
        return affine_features(self.inputs(X))


@dataclass(frozen=True)
class TopKSoftmaxGate(IntegerArgument, SoftmaxGate):
    """Softmax over the K largest logits; the others get weight exactly 0.

    Ties are broken by the lowest index: expert i is active when
    #{j: z_j > z_i} + #{j < i: z_j = z_i} < K.
    """

    name: ClassVar[str] = "topk_softmax"
    argument: ClassVar[str] = "K"
    # EM's Q is -inf as soon as a boundary moves (points with r > 0 lose their expert), so the
    # gate block maximises the observed log-likelihood instead (ECME, Liu & Rubin 1994)
    m_step: ClassVar[str] = "active_set_newton"
    test_truths: ClassVar[dict] = {
        "topk_softmax:2": {"beta1": [[3.0], [-3.0], [0.0]], "beta0": [0.0, 0.0, 0.0]}}
    argument_field, argument_default, argument_minimum = "k_active", 2, 1
    k_active: int = 2
    logit_features = None  # not smooth: no one-pass EM

    def check(self, n_experts):
        if self.k_active > n_experts:
            raise InputError(f"topk_softmax K={self.k_active} exceeds n_experts={n_experts}")

    def active_set_features(self, X):
        """Logit features [x, 1] (logits are linear in the parameters on each active set):
        the EM gate block takes a Newton step with the active sets fixed (fit/em.py)."""
        return affine_features(X)

    def active(self, logits):
        return top_k_mask(logits, self.k_active)

    def log_weights(self, params, X):
        z = self.logits(params, X)
        return masked_log_softmax(z, self.active(z))


@dataclass(frozen=True)
class SigmoidGate(Gate):
    """w_i(x) = sigmoid(beta1_i^T x + beta0_i), not normalised (regression models only)."""

    name: ClassVar[str] = "sigmoid"
    Params: ClassVar[type] = LinearGateParams
    x_fields: ClassVar[tuple] = ("beta1", "beta0")
    normalized: ClassVar[bool] = False
    # (2.5, 0.5) differs from the ridge:sigmoid expert's (3, 0.5): sigmoid(gate) x
    # sigmoid(expert) is symmetric under swapping the two, so equal truths make the Fisher
    # matrix singular
    test_truths: ClassVar[dict] = {"sigmoid": {"beta1": [[2.5], [-2.0]], "beta0": [0.5, 1.0]}}

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
        return divide_sigmoid_weights(super().split(params, assignment), assignment)


@dataclass(frozen=True)
class CosineGate(Gate):
    """Perturbed cosine router (arXiv 2405.14131): softmax over the K largest scores

        s_i(x) = beta1_i . x / ((||beta1_i|| + tau) (||x|| + tau)) + beta0_i,

    the others weight 0. tau > 0 perturbs the norms; tau = 0 is the vanilla cosine router (a
    zero vector scores 0). Spec ``cosine:K:TAU``, K a number or ``all`` (``cosine``: every
    expert active, tau 0.1).
    The last expert's (beta1, beta0) = 0: a gauge for beta0, a convention for beta1 (the score
    is not translation invariant in beta1). The scores are not linear in beta1 and top-K
    boundaries make Q_gate -inf where they move, so EM's gate step is ECME on the likelihood.
    """

    name: ClassVar[str] = "cosine"
    argument: ClassVar[str] = "K:TAU"
    Params: ClassVar[type] = LinearGateParams
    gauge: ClassVar[tuple] = ("beta1", "beta0")
    m_step: ClassVar[str] = "likelihood"
    # |beta1| of the order of tau: the score is most sensitive to beta1 there
    test_truths: ClassVar[dict] = {"cosine:2:0.1": {"beta1": [[0.2], [0.0]],
                                                     "beta0": [0.5, 0.0]}}
    k_active: int = 0  # 0: every expert active
    tau: float = 0.1

    @classmethod
    def from_spec(cls, argument):
        k_text, _, tau_text = (argument or "").partition(":")
        k = 0 if k_text in ("", "all") else integer_argument(cls, k_text, default=0, minimum=1)
        try:
            tau = float(tau_text) if tau_text else 0.1
        except ValueError:
            raise InputError(f"cosine needs TAU >= 0 after K:, got {tau_text!r}") from None
        if not (np.isfinite(tau) and tau >= 0):
            raise InputError(f"cosine needs a finite TAU >= 0, got {tau_text!r}")
        return cls(k_active=k, tau=tau)

    @property
    def label(self):
        return f"cosine:{self.k_active or 'all'}:{self.tau:g}"

    @property
    def shift_invariant(self):
        return ("beta0",)

    def check(self, n_experts):
        if self.k_active > n_experts:
            raise InputError(f"cosine K={self.k_active} exceeds n_experts={n_experts}")

    def shapes(self, k, d):
        return {"beta1": (k, d), "beta0": (k,)}

    def logits(self, params, X):
        den = ((_safe_norm(params.beta1, 1) + self.tau)[None, :]
               * (_safe_norm(X, 1) + self.tau)[:, None])
        score = jnp.where(den > 0, (X @ params.beta1.T) / jnp.where(den > 0, den, 1.0), 0.0)
        return score + params.beta0

    def log_weights(self, params, X):
        z = self.logits(params, X)
        if not self.k_active:
            return jax.nn.log_softmax(z, axis=-1)
        return masked_log_softmax(z, top_k_mask(z, self.k_active))

    def split(self, params, assignment):
        """Dense (every expert active): copies divide their atom's weight (beta0 - log count).
        Sparse (K < k): copies keep their atom's score. Top-K routes by score, and the cosine
        term lies in (-1, 1) (near 0 for small beta1), so beta0 - log 2 can rank both copies
        below K others on every input: never routed, zero gradient, never fitted."""
        if self.k_active and self.k_active < len(assignment):
            return super().split(params, assignment)
        return split_softmax_intercepts(params, assignment)


class LaplaceGateParams(NamedTuple):
    W: jax.Array  # (k, d) locations
    beta0: jax.Array  # (k,) intercepts


@dataclass(frozen=True)
class LaplaceGate(Gate):
    """Laplace gate (FuseMoE, arXiv 2402.03226): w_i(x) = softmax_i(-||W_i - x|| + beta0_i),
    the unsquared Euclidean distance to a location W_i (k, d). Only a common shift of beta0
    leaves the weights unchanged (the last beta0 = 0); every W_i is free. Q_gate is smooth
    away from x = W_i but not linear in W: EM's gate step is the generic one.

    In an over-fitted Voronoi cell the paper's D2 raises ||dW|| and ||da|| to 2 whatever the
    cell's size (softmax: rbar-dependent), which `d2_overfitted_exponents` declares."""

    name: ClassVar[str] = "laplace"
    Params: ClassVar[type] = LaplaceGateParams
    gauge: ClassVar[tuple] = ("beta0",)
    d2_overfitted_exponents: ClassVar[dict] = {"W": 2.0, "a": 2.0}
    test_truths: ClassVar[dict] = {"laplace": {"W": [[-1.0], [1.0]], "beta0": [0.3, 0.0]}}

    def shapes(self, k, d):
        return {"W": (k, d), "beta0": (k,)}

    def logits(self, params, X):
        return params.beta0 - _safe_norm(X[:, None, :] - params.W[None, :, :], axis=-1)

    def log_weights(self, params, X):
        return jax.nn.log_softmax(self.logits(params, X), axis=-1)

    def split(self, params, assignment):
        return split_softmax_intercepts(params, assignment)
