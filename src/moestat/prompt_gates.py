"""Gates of contaminated models (docs/models.md, "Contaminated models"): one trainable prompt
expert beside a frozen (pre-trained, known) expert; components are ordered [prompt, frozen].

Both gates declare `frozen_expert`, so `MixtureOfExperts` asks for a `FrozenExpert` and
n_experts = 1, and `prompt_errors` (fitted, true gate parameters) -> {metric: error}, the
gate's part of the contaminated models' parameter errors (losses.prompt_errors).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import jax
import jax.numpy as jnp

from moestat.gates import Gate
from moestat.parts import affine_features, affine_monomials


class ContaminatedGateParams(NamedTuple):
    beta: jax.Array  # (d,) prompt gate slope
    tau: jax.Array  # () prompt gate intercept


class InputFreeGateParams(NamedTuple):
    lam: jax.Array  # () prompt weight lambda in [0, 1]


@dataclass(frozen=True)
class ContaminatedGate(Gate):
    """Components [prompt, frozen]: w_prompt(x) = sigmoid(beta^T x + tau), w_frozen = 1 - w_prompt.

    A two-expert softmax whose frozen logit is fixed at 0.
    """

    name: ClassVar[str] = "contaminated"
    Params: ClassVar[type] = ContaminatedGateParams
    m_step: ClassVar[str] = "newton"
    frozen_expert: ClassVar[bool] = True
    test_truths: ClassVar[dict] = {"contaminated": {"beta": [2.0], "tau": 0.5}}

    def shapes(self, k, d):
        return {"beta": (d,), "tau": ()}

    def log_weights(self, params, X):
        z = X @ params.beta + params.tau
        # log sigmoid(+-z) = min(+-z, 0) - log1p(exp(-|z|)): one transcendental pair for both
        t = jnp.log1p(jnp.exp(-jnp.abs(z)))
        return jnp.stack([jnp.minimum(z, 0.0) - t, jnp.minimum(-z, 0.0) - t], axis=1)

    logit_features = staticmethod(affine_features)  # [x, 1]

    logit_monomials = staticmethod(affine_monomials)

    def prompt_errors(self, fitted, truth) -> dict:
        """|exp(tau_hat) - exp(tau*)| and ||beta_hat - beta*||."""
        return {"exp_tau": jnp.abs(jnp.exp(fitted.tau) - jnp.exp(truth.tau)),
                "beta": jnp.linalg.norm(fitted.beta - truth.beta)}

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
    m_step: ClassVar[str] = "closed_form"
    frozen_expert: ClassVar[bool] = True
    test_truths: ClassVar[dict] = {"input_free": {"lam": 0.4}}

    def shapes(self, k, d):
        return {"lam": ()}

    def log_weights(self, params, X):
        row = jnp.stack([jnp.log(params.lam), jnp.log1p(-params.lam)])
        return jnp.broadcast_to(row, (X.shape[0], 2))

    def closed_form_m_step(self, params, X, resp, weights):
        """lambda = weighted mean of the prompt responsibilities (exact EM update)."""
        return params._replace(lam=jnp.sum(weights * resp[:, 0]) / jnp.sum(weights))

    def prompt_errors(self, fitted, truth) -> dict:
        """|lambda_hat - lambda*|."""
        return {"lambda": jnp.abs(fitted.lam - truth.lam)}
