"""Numerical identifiability checks classify every case the papers state correctly."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from moestat import InputError
from moestat.identifiability import (
    THRESHOLD,
    check_activation,
    check_distinguishable,
    check_expert,
    check_gate,
)


def verdicts(report):
    return [c.holds for c in report.checks]  # [first order, strong (<= 2), gate x expert]


@pytest.mark.parametrize("act", ["sigmoid", "tanh"])
def test_ridge_sigmoid_tanh_strongly_identifiable(act):
    first, strong, _ = verdicts(check_expert(f"ridge:{act}"))
    assert first and strong


@pytest.mark.parametrize("spec", ["linear", "polynomial:2", "polynomial:3"])
def test_linear_and_polynomial_not_strongly_identifiable(spec):
    _, strong, gate = verdicts(check_expert(spec))
    assert not strong and not gate


def test_relu_fails_second_order_only():
    first, strong, _ = verdicts(check_expert("ridge:relu"))
    assert first and not strong


def test_tanh_without_bias_meets_the_contaminated_condition_with_bias_fails():
    assert verdicts(check_expert("ridge_nobias:tanh"))[2]
    assert not verdicts(check_expert("ridge:tanh"))[2]


def test_activation_gate_identity_fails_tanh_passes():
    assert not check_activation("identity").checks[0].holds
    assert check_activation("tanh").checks[0].holds


@pytest.mark.parametrize("spec,holds", [("laplace", True), ("cosine:2:0.1", True),
                                        ("modified_softmax:tanh", True),
                                        ("softmax", False), ("topk_softmax:2", False),
                                        ("cosine:2:0", False)])
def test_gate_expert_interaction(spec, holds):
    """The softmax PDE d2u/(d beta1 d b) = du/da holds to round-off, and with it every gate
    linear in x (top-K); the Laplace gate, the perturbed cosine router and the modified
    softmax gate break it (arXiv 2402.03226, 2405.14131, 2310.14188); the vanilla router is
    degenerate (||beta1|| drops out)."""
    c = check_gate(spec).checks[0]
    assert c.holds is holds
    assert c.min_ratio > THRESHOLD * 100 if holds else c.min_ratio < THRESHOLD * 1e-6


def test_margins_are_wide():
    """Exact identities sit far below the threshold, independent families far above."""
    assert check_expert("linear").checks[1].min_ratio < THRESHOLD * 1e-6
    assert check_expert("ridge:tanh").checks[1].min_ratio > THRESHOLD * 100
    assert check_expert("ridge_nobias:tanh").checks[2].min_ratio > THRESHOLD * 100


def test_unknown_names_are_refused():
    with pytest.raises(InputError, match="unknown expert"):
        check_expert("nope")
    with pytest.raises(InputError, match="unknown activation"):
        check_activation("nope")


def run(*args):
    return subprocess.run([sys.executable, "-m", "moestat", *args], capture_output=True,
                          text=True, timeout=300)


def test_cli_prints_the_verdict():
    r = run("identifiability", "--expert", "ridge:tanh")
    assert r.returncode == 0, r.stderr
    assert "holds" in r.stdout and "fails" in r.stdout and "strongly identifiable" in r.stdout
    r = run("identifiability", "--activation", "identity", "--json")
    out = json.loads(r.stdout)
    assert out["checks"][0]["holds"] is False and out["threshold"] == THRESHOLD


def test_cli_bad_arguments_exit_2():
    r = run("identifiability")
    assert r.returncode == 2 and "exactly one of" in r.stderr
    r = run("identifiability", "--expert", "nope")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    r = run("identifiability", "--gate", "sigmoid")
    assert r.returncode == 2 and "normalised gate" in r.stderr


def _frozen(noise, expert="ridge_nobias:tanh"):
    from moestat.model import FrozenExpert

    return FrozenExpert.create(expert, noise, {"eta": [1.0] + [0.0] * 7}, 0.001)


def test_laplace_frozen_expert_is_distinguishable_from_gaussian_prompts():
    """The paper's distinguishable setting (Laplace f0, Gaussian tanh prompt): independent with
    a wide margin (ratio ~1e-1 against the 1e-8 threshold), at the frozen atom too."""
    r = check_distinguishable(_frozen("laplace"), "ridge_nobias:tanh", "gaussian")
    assert len(r.checks) == 2 and all(c.holds for c in r.checks)
    assert min(c.min_ratio for c in r.checks) > THRESHOLD * 1e4
    assert r.rate_class.startswith("distinguishable")


def test_gaussian_frozen_expert_of_the_prompt_family_is_not():
    """Gaussian f0 with the prompt's own expert family: at the frozen atom the prompt density
    equals f0 (an exact identity, ratio at rounding level); random atoms stay independent."""
    r = check_distinguishable(_frozen("gaussian"), "ridge_nobias:tanh", "gaussian")
    at_frozen, random_atoms = r.checks
    assert not at_frozen.holds and at_frozen.min_ratio < 1e-12
    assert random_atoms.holds
    assert r.rate_class.startswith("not distinguishable")
    # a different prompt expert family cannot reproduce the Gaussian tanh f0 exactly
    assert check_distinguishable(_frozen("gaussian"), "linear", "gaussian").checks[0].holds


def test_cli_distinguishability():
    r = run("identifiability", "--expert", "ridge_nobias:tanh", "--frozen-noise", "gaussian",
            "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["checks"][0]["holds"] is False
    r = run("identifiability", "--activation", "tanh", "--frozen-noise", "laplace")
    assert r.returncode == 2 and "--frozen-noise needs --expert" in r.stderr
