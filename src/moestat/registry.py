"""The registry: every part class moestat knows, by name. A part spec is ``name`` or
``name:argument`` (e.g. ``topk_softmax:2``, ``ridge:tanh``); the class parses its argument
(`Part.from_spec`). A new part is its class and one line in one of the tables below; the
contract test (tests/test_contract.py) then fits it from its `test_truths`.
"""

from __future__ import annotations

import dataclasses

from moestat import (
    experts,
    gates,
    noise,
    prompt_gates,
    quadratic_gates,
    shared_gates,
    temperature_gates,
)
from moestat.activations import ACTIVATIONS
from moestat.errors import InputError
from moestat.experts import Expert
from moestat.gates import Gate
from moestat.noise import Noise
from moestat.parts import Part


def _table(*classes: type[Part]) -> dict[str, type[Part]]:
    return {c.name: c for c in classes}


GATES: dict[str, type[Gate]] = _table(
    gates.SoftmaxGate,
    gates.ModifiedSoftmaxGate,
    gates.TopKSoftmaxGate,
    temperature_gates.TemperatureSoftmaxGate,
    temperature_gates.ActivationTemperatureSoftmaxGate,
    gates.SigmoidGate,
    quadratic_gates.QuadraticSoftmaxGate,
    quadratic_gates.QuadraticSigmoidGate,
    prompt_gates.ContaminatedGate,
    prompt_gates.InputFreeGate,
    gates.CosineGate,
    gates.LaplaceGate,
    shared_gates.NormalizedSigmoidGate,
    shared_gates.SharedRoutedGate,
)
EXPERTS: dict[str, type[Expert]] = _table(
    experts.LinearExpert,
    experts.PolynomialExpert,
    experts.ConstantExpert,
    experts.RidgeExpert,
    experts.RidgeNoBiasExpert,
    experts.ScaledRidgeExpert,
    experts.MultinomialExpert,
)
NOISES: dict[str, type[Noise]] = _table(noise.GaussianNoise, noise.LaplaceNoise,
                                        noise.CategoricalNoise)
ESTIMATORS = ("em", "mle", "newton", "lse", "sgd")


def _make(kind: str, table: dict, spec, base: type):
    if isinstance(spec, base):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise InputError(f"a part name must be a non-empty string, got {spec!r}")
    name, _, argument = spec.strip().partition(":")
    if name not in table:
        raise InputError(f"unknown {kind} {name!r}; expected one of {', '.join(table)}")
    return table[name].from_spec(argument or None)


def make_gate(spec: str | Gate) -> Gate:
    """Gate from a spec such as ``softmax`` or ``topk_softmax:2``."""
    return _make("gate", GATES, spec, Gate)


def make_expert(spec: str | Expert) -> Expert:
    """Expert from a spec such as ``linear``, ``polynomial:3`` or ``ridge:tanh``."""
    return _make("expert", EXPERTS, spec, Expert)


def make_noise(spec: str | Noise, shared: bool = False) -> Noise:
    """Noise law from its name; `shared` gives one variance for all experts (regression)."""
    if isinstance(spec, Noise):
        return spec
    if isinstance(spec, str) and spec.strip() not in NOISES:
        raise InputError(f"unknown noise {spec!r}; expected one of {', '.join(NOISES)}")
    return dataclasses.replace(_make("noise", NOISES, spec, Noise), shared=shared)


def catalogue() -> dict[str, list[str]]:
    """Everything registered, for `moestat list`."""
    from moestat.shipped import shipped_experiments

    return {
        "experiments": shipped_experiments(),
        "gates": [c.spec_help() for c in GATES.values()],
        "experts": [c.spec_help() for c in EXPERTS.values()],
        "activations (ACT)": [a if a != "identity" else "identity (gate only)"
                              for a in ACTIVATIONS],
        "noises": list(NOISES),
        "estimators": list(ESTIMATORS),
    }
