"""Known truths for every registered part, used by the contract tests.

Each truth is O(1)-scaled with well-separated experts (d = 1, x ~ N(0, 1)), so that at
n = 50 000 the MLE / LSE sits within a few hundredths of it (see test_contract.py for the
tolerance).
"""

from __future__ import annotations

import itertools

import jax
import numpy as np

from moestat import FrozenExpert, MixtureOfExperts
from moestat.registry import make_expert, make_gate

N_FEATURES = 1

GATE_TRUTH = {
    "softmax": {"beta1": [[3.0], [0.0]], "beta0": [0.5, 0.0]},
    "topk_softmax:2": {"beta1": [[3.0], [-3.0], [0.0]], "beta0": [0.0, 0.0, 0.0]},
    "temperature_softmax": {"beta1": [[3.0], [0.0]], "beta0": [0.5, 0.0], "tau": 1.0},
    "activation_temperature_softmax:tanh": {"beta1": [[2.0], [0.0]], "beta0": [0.5, 0.0],
                                            "tau": 0.5},
    # (2.5, 0.5) differs from the ridge:sigmoid expert (3, 0.5): sigmoid(gate) * sigmoid(expert)
    # is symmetric under swapping the two, so equal truths make the Fisher matrix singular
    "sigmoid": {"beta1": [[2.5], [-2.0]], "beta0": [0.5, 1.0]},
    "quadratic_softmax": {"A": [[[2.0]], [[0.0]]], "beta1": [[1.0], [0.0]], "beta0": [-1.0, 0.0]},
    "quadratic_sigmoid": {"A": [[[1.5]], [[-1.0]]], "beta1": [[1.0], [0.5]],
                          "beta0": [-0.5, 1.0]},
    "contaminated": {"beta": [2.0], "tau": 0.5},
    "input_free": {"lam": 0.4},
}

EXPERT_TRUTH = {  # rows = experts; the contaminated models use row 0 (prompt), row 1 (frozen)
    # rows are not negations of each other: with complementary sigmoid gates that would make
    # regression models unidentifiable (f = h (2 sigmoid - 1) has many parametrisations)
    "linear": {"a": [[2.0], [-1.0], [1.0]], "b": [1.0, -0.5, 0.0]},
    "polynomial:2": {"coef": [[1.0, 2.0, -1.0], [-1.0, -1.0, 1.5], [0.0, 1.0, 1.0]]},
    "constant": {"b": [2.0, -2.0, 0.0]},
    # row 2 (used by top-K, k = 3) stays apart from rows 0 and 1 where they share a region
    "ridge:sigmoid": {"a": [[3.0], [-2.0], [0.5]], "b": [0.5, -1.0, -2.0]},
    "ridge:tanh": {"a": [[2.0], [-1.5], [0.5]], "b": [0.5, -1.0, -1.5]},
    "ridge:relu": {"a": [[2.0], [-1.5], [0.5]], "b": [0.5, -1.0, 1.5]},
    "ridge:gelu": {"a": [[2.0], [-1.5], [0.5]], "b": [0.5, -1.0, 1.5]},
    "ridge_nobias:tanh": {"eta": [[2.0], [-1.5], [1.0]]},
}

NOISE_VAR = [0.05, 0.08, 0.06]
FROZEN_VAR = 0.05
GATES = list(GATE_TRUTH)
EXPERTS = list(EXPERT_TRUTH)
NOISES = ["gaussian", "laplace"]


def n_components(gate: str) -> int:
    t = GATE_TRUTH[gate]
    return 2 if "lam" in t or "beta" in t else len(t["beta0"])


def build(gate: str, expert: str, noise: str):
    """(model, truth, estimator) for one combination."""
    g = make_gate(gate)
    e = make_expert(expert)
    frozen = None
    K = n_components(gate)
    k = K
    et = {f: np.asarray(v)[:K] for f, v in EXPERT_TRUTH[expert].items()}
    if gate in ("contaminated", "input_free"):
        k = 1
        frozen = FrozenExpert.create(e, "laplace", {f: v[1] for f, v in et.items()}, FROZEN_VAR)
        et = {f: v[:1] for f, v in et.items()}
    kind = "mixture" if g.normalized else "regression"
    model = MixtureOfExperts.create(g, e, noise, n_experts=k, n_features=N_FEATURES,
                                    kind=kind, frozen=frozen)
    named = {f"gate.{f}": v for f, v in GATE_TRUTH[gate].items()}
    named.update({f"expert.{f}": v for f, v in et.items()})
    named["noise.var"] = NOISE_VAR[0] if kind == "regression" else NOISE_VAR[:k]
    truth = model.canonicalize(model.from_named(named))
    return model, truth, ("em" if kind == "mixture" else "lse")


def sample(model, truth, n: int, seed: int):
    kx, ky = jax.random.split(jax.random.PRNGKey(seed))
    X = jax.random.normal(kx, (n, N_FEATURES))
    return X, model.sample(ky, truth, X)


def all_combinations():
    return list(itertools.product(GATES, EXPERTS, NOISES))


def covering_combinations():
    """Every gate with two expert families, every expert with the softmax gate, both noises
    alternating: each part appears in the default run."""
    out, i = [], 0
    for g in GATES:
        for e in ("linear", "ridge:tanh"):
            out.append((g, e, NOISES[i % 2]))
            i += 1
    for e in EXPERTS:
        if e not in ("linear", "ridge:tanh"):
            out.append(("softmax", e, NOISES[i % 2]))
            i += 1
    return out


def comparable(model, params) -> dict[str, np.ndarray]:
    """Named parameters in identifiable coordinates: the temperature gate is invariant to
    scaling (beta1, beta0, tau) together, so it is compared through beta1/tau and beta0/tau."""
    named = model.named(params)
    if model.gate.name == "temperature_softmax":
        tau = named.pop("gate.tau")
        named["gate.beta1/tau"] = named.pop("gate.beta1") / tau
        named["gate.beta0/tau"] = named.pop("gate.beta0") / tau
    return named
