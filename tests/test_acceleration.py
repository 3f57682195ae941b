"""SQUAREM-accelerated EM (fit/acceleration.py): the same maximum as plain EM, a log-likelihood
that never decreases, and fewer EM steps (measured: 33 against 44 on the over-specified fit,
417 against 1594 on the close prompt).

Cases: an over-specified softmax Gaussian MoE (k = 3 fitted to a k* = 2 truth, the first atom
split) through the one-pass EM, and a contaminated MoE whose linear prompt is close to its
frozen expert (a flat likelihood: plain EM crawls) through the generic per-sample EM. Both
optimisers run to tol 1e-12 from the same start on the same data; "the same maximum" means mean
log-likelihoods within 1e-7 (per sample; the flat directions leave the parameters themselves
loosely determined at this tolerance, the likelihood not).
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

from moestat import FrozenExpert, MixtureOfExperts
from moestat.fit import FitOptions, fit, near_truth

OVER = (dict(gate="softmax", expert="linear", n_experts=3, n_features=1),
        dict(gate="softmax", expert="linear", n_experts=2, n_features=1),
        {"gate.beta1": [[25.0], [0.0]], "gate.beta0": [-8.0, 0.0],
         "expert.a": [[-20.0], [20.0]], "expert.b": [15.0, -5.0], "noise.var": [0.09, 0.16]},
        (0, 0, 1), "auto")
FROZEN = FrozenExpert.create("linear", "gaussian", {"a": [1.0, -0.5], "b": 0.2}, 0.05)
CLOSE = (dict(gate="contaminated", expert="linear", n_experts=1, n_features=2,
              frozen=FROZEN),) * 2 + (
    {"gate.beta": [0.7, 0.7], "gate.tau": 1.0, "expert.a": [[1.1, -0.5]], "expert.b": [0.2],
     "noise.var": [0.06]}, None, "generic")


@pytest.mark.parametrize("case", [OVER, CLOSE], ids=["over-specified", "close-prompt"])
def test_squarem_reaches_plain_em_maximum_in_fewer_steps(case):
    fit_spec, truth_spec, named, assignment, path = case
    model, truth_model = MixtureOfExperts.create(**fit_spec), MixtureOfExperts.create(
        **truth_spec)
    truth = truth_model.from_named(named)
    kx, ky, ks = jax.random.split(jax.random.PRNGKey(3), 3)
    n = 3000
    uniform = model.gate.name == "softmax"
    X = (jax.random.uniform(kx, (n, 1)) if uniform else jax.random.normal(kx, (n, 2)))
    y = truth_model.sample(ky, truth, X)
    start = near_truth(model, truth, ks, 0.1, assignment)
    plain_opts = FitOptions(max_iter=20000, tol=1e-12, em_path=path)
    plain = fit(model, X, y, start, options=plain_opts)
    fast = fit(model, X, y, start, options=dataclasses.replace(plain_opts,
                                                               accelerate="squarem"))
    assert bool(plain.converged) and bool(fast.converged)
    assert float(fast.loglik) == pytest.approx(float(plain.loglik), abs=1e-7)
    hist = np.asarray(fast.history)[: int(fast.n_iter)]
    assert np.all(np.diff(hist) >= -1e-12)  # never decreases
    em_steps = 3 * int(fast.n_iter)  # one accelerated iteration = three EM steps
    assert em_steps < int(plain.n_iter), (em_steps, int(plain.n_iter))


def test_accelerate_is_checked():
    with pytest.raises(ValueError, match="accelerate"):
        FitOptions(accelerate="anderson")
