"""The contract tests' models: every registered part with the truths its class declares
(`test_truths`), combined gate x expert x noise.

Each truth is O(1)-scaled with well-separated experts (d = 1, x ~ N(0, 1)), so that at
n = 50 000 the MLE / LSE sits within a few hundredths of it (see test_contract.py for the
tolerance).
"""

from __future__ import annotations

import itertools

import jax
import numpy as np

from moestat import FrozenExpert, MixtureOfExperts, registry
from moestat.registry import make_expert, make_gate

N_FEATURES = 1


def _truths(table) -> dict[str, dict]:
    """spec -> truth over every registered class of a registry table (a class without a test
    truth contributes none: test_contract.py fails on it)."""
    return {spec: truth for cls in table.values() for spec, truth in cls.test_truths.items()}


GATE_TRUTH = _truths(registry.GATES)
EXPERT_TRUTH = _truths(registry.EXPERTS)
NOISE_VAR = [0.05, 0.08, 0.06]
FROZEN_VAR = 0.05
GATES = list(GATE_TRUTH)
# label experts (multinomial:R) pair with the categorical likelihood only, and need a
# normalised gate without a frozen expert
CLASSIFIERS = [e for e in EXPERT_TRUTH if make_expert(e).categorical]
EXPERTS = [e for e in EXPERT_TRUTH if e not in CLASSIFIERS]
NOISES = [n for n in registry.NOISES if not registry.NOISES[n].categorical]
CLASSIFYING_GATES = [g for g in GATES
                     if make_gate(g).normalized and not make_gate(g).frozen_expert]


def n_components(gate: str) -> int:
    return 2 if make_gate(gate).frozen_expert else len(GATE_TRUTH[gate]["beta0"])


def build(gate: str, expert: str, noise: str):
    """(model, truth, estimator) for one combination."""
    g = make_gate(gate)
    e = make_expert(expert)
    frozen = None
    K = n_components(gate)
    k = K
    et = {f: np.asarray(v)[:K] for f, v in EXPERT_TRUTH[expert].items()}
    if g.frozen_expert:
        k = 1
        frozen = FrozenExpert.create(e, "laplace", {f: v[1] for f, v in et.items()}, FROZEN_VAR)
        et = {f: v[:1] for f, v in et.items()}
    kind = ("classification" if e.categorical else "mixture" if g.normalized
            else "regression")
    model = MixtureOfExperts.create(g, e, noise, n_experts=k, n_features=N_FEATURES,
                                    kind=kind, frozen=frozen)
    named = {f"gate.{f}": v for f, v in GATE_TRUTH[gate].items()}
    named.update({f"expert.{f}": v for f, v in et.items()})
    if kind != "classification":
        named["noise.var"] = NOISE_VAR[0] if kind == "regression" else NOISE_VAR[:k]
    truth = model.canonicalize(model.from_named(named))
    return model, truth, ("lse" if kind == "regression" else "em")


def sample(model, truth, n: int, seed: int):
    kx, ky = jax.random.split(jax.random.PRNGKey(seed))
    X = jax.random.normal(kx, (n, N_FEATURES))
    return X, model.sample(ky, truth, X)


def all_combinations():
    return (list(itertools.product(GATES, EXPERTS, NOISES))
            + list(itertools.product(CLASSIFYING_GATES, CLASSIFIERS, ["categorical"])))


def covering_combinations():
    """Every gate class with two expert families (its first test truth), every expert with the
    softmax gate, both noises alternating: each part appears in the default run."""
    out, i = [], 0
    first = {}
    for g in GATES:
        first.setdefault(type(make_gate(g)), g)
    for g in first.values():
        for e in ("linear", "ridge:tanh"):
            out.append((g, e, NOISES[i % 2]))
            i += 1
    for e in EXPERTS:
        if e not in ("linear", "ridge:tanh"):
            out.append(("softmax", e, NOISES[i % 2]))
            i += 1
    out += [("softmax", e, "categorical") for e in CLASSIFIERS]
    return out


def covered_parts() -> set[str]:
    """Names of the gates and experts the default contract run fits."""
    return {make_gate(g).name for g, _, _ in covering_combinations()} | \
        {make_expert(e).name for _, e, _ in covering_combinations()}
