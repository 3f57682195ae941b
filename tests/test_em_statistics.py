"""The one-pass EM (fit/em_statistics.py) is the same algorithm as the generic EM (fit/em.py).

Each eligible family is fitted both ways from the same start on the same weighted data
(non-uniform weights plus zero-weight padding) for a fixed number of iterations (tol < 0).
Tolerances: the two implementations sum in different orders, so each iteration differs by a
few ulps; over 40 iterations of a contraction that stays far below 1e-8 relative (measured:
<= 4e-14 on the benchmark model), and the log-likelihood histories agree to 1e-10.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from moestat import FrozenExpert, MixtureOfExperts
from moestat.fit import FitOptions, fit, near_truth
from moestat.fit.em_statistics import Layout, applies, data_columns

FROZEN = FrozenExpert.create("linear", "gaussian", {"a": [1.0, -0.5], "b": 0.2}, 0.05)

CASES = {
    "softmax-linear-d2": (
        dict(gate="softmax", expert="linear", n_experts=3, n_features=2),
        {"gate.beta1": [[3.0, -1.0], [-2.0, 1.0], [0.0, 0.0]], "gate.beta0": [0.3, -0.2, 0.0],
         "expert.a": [[1.0, 2.0], [-1.0, 0.5], [0.0, -2.0]], "expert.b": [0.5, -0.5, 1.0],
         "noise.var": [0.05, 0.1, 0.08]}),
    "quadratic_softmax-linear": (
        dict(gate="quadratic_softmax", expert="linear", n_experts=2, n_features=2),
        {"gate.A": [[[1.0, 0.5], [0.5, -1.0]], [[0.0, 0.0], [0.0, 0.0]]],
         "gate.beta1": [[2.0, -1.0], [0.0, 0.0]], "gate.beta0": [0.2, 0.0],
         "expert.a": [[1.5, 0.0], [-1.0, 1.0]], "expert.b": [0.0, 0.5],
         "noise.var": [0.05, 0.07]}),
    "temperature_softmax-polynomial": (
        dict(gate="temperature_softmax", expert="polynomial:2", n_experts=3, n_features=1),
        {"gate.beta1": [[4.0], [-4.0], [0.0]], "gate.beta0": [0.5, 0.5, 0.0], "gate.tau": 2.0,
         "expert.coef": [[0.5, 1.0, -1.0], [-0.5, 0.0, 2.0], [0.0, -1.5, 0.5]],
         "noise.var": [0.05, 0.06, 0.04]}),
    "softmax-constant": (
        dict(gate="softmax", expert="constant", n_experts=2, n_features=1),
        {"gate.beta1": [[3.0], [0.0]], "gate.beta0": [0.0, 0.0], "expert.b": [1.0, -1.0],
         "noise.var": [0.1, 0.2]}),
    "softmax-linear-one-expert": (
        dict(gate="softmax", expert="linear", n_experts=1, n_features=1),
        {"gate.beta1": [[0.0]], "gate.beta0": [0.0], "expert.a": [[2.0]], "expert.b": [0.5],
         "noise.var": [0.1]}),
    "contaminated-linear-frozen": (
        dict(gate="contaminated", expert="linear", n_experts=1, n_features=2, frozen=FROZEN),
        {"gate.beta": [2.0, -1.0], "gate.tau": 0.3, "expert.a": [[-1.0, 1.0]],
         "expert.b": [0.5], "noise.var": [0.04]}),
}


def _fit_both(model, X, y, w, start, options):
    one_pass = fit(model, X, y, start, weights=w, options=options)
    generic = fit(model, X, y, start, weights=w,
                  options=dataclasses.replace(options, em_path="generic"))
    return one_pass, generic


@pytest.mark.parametrize("case", sorted(CASES))
def test_one_pass_em_equals_the_generic_em(case):
    spec, named = CASES[case]
    model = MixtureOfExperts.create(**spec)
    options = FitOptions(max_iter=40, tol=-1.0)
    assert applies(model, options)
    truth = model.from_named(named)
    kx, ky, kw, ks = jax.random.split(jax.random.PRNGKey(7), 4)
    n = 1500
    X = jax.random.uniform(kx, (n, model.n_features), minval=-1.0, maxval=1.0)
    y = model.sample(ky, truth, X)
    w = jax.random.uniform(kw, (n,), minval=0.5, maxval=1.5).at[-100:].set(0.0)
    start = near_truth(model, truth, ks, 0.3)
    a, b = _fit_both(model, X, y, w, start, options)
    assert int(a.n_iter) == int(b.n_iter) == 40
    np.testing.assert_allclose(a.history, b.history, rtol=1e-10)
    for u, v in zip(jax.tree_util.tree_leaves(a.params), jax.tree_util.tree_leaves(b.params),
                    strict=True):
        np.testing.assert_allclose(u, v, rtol=1e-8, atol=1e-10)
    # generalised EM: the one-pass history never decreases (beyond rounding)
    assert np.all(np.diff(np.asarray(a.history)) >= -1e-12)
    assert float(a.history[-1]) >= float(a.history[0])


@pytest.mark.parametrize("spec", [
    dict(gate="topk_softmax:2", expert="linear"),  # ECME gate step
    dict(gate="activation_temperature_softmax:tanh", expert="linear"),  # non-linear logits
    dict(gate="softmax", expert="ridge:tanh"),  # expert non-linear in its parameters
    dict(gate="softmax", expert="linear", noise="laplace"),  # not Gaussian
])
def test_other_families_keep_the_generic_em(spec):
    model = MixtureOfExperts.create(**spec, n_experts=3, n_features=1)
    assert not applies(model, FitOptions())


def test_more_gate_newton_steps_or_too_many_data_columns_keep_the_generic_em():
    model = MixtureOfExperts.create("softmax", "linear", n_experts=2, n_features=1)
    assert applies(model, FitOptions())
    assert not applies(model, FitOptions(gate_newton_steps=2))
    # D's distinct columns, linear experts: 1 + d + d(d+1)/2 + (d + 1) + 1 (<= 1024 up to d = 42)
    at_limit = MixtureOfExperts.create("softmax", "linear", n_experts=2, n_features=42)
    assert data_columns(at_limit) == 990 and applies(at_limit, FitOptions())
    wide = MixtureOfExperts.create("softmax", "linear", n_experts=2, n_features=43)
    assert data_columns(wide) == 1035 and not applies(wide, FitOptions())


def test_layout_holds_each_product_once():
    # softmax gate [x, 1] and linear experts [x, 1], d = 1: 1, x, x^2, y, x y, y^2
    lay = Layout([(0,), ()], [(0,), ()])
    assert sorted(map(str, lay.keys)) == sorted(map(str, [(), (0,), (0, 0), ("y", (0,)),
                                                          ("y", ()), ("y", "y")]))
    X = jnp.array([[2.0], [3.0]])
    y = jnp.array([5.0, 7.0])
    D = np.asarray(lay.data(X, y, jnp.array([1.0, 0.5])))
    col = {str(key): D[:, i] for i, key in enumerate(lay.keys)}
    np.testing.assert_allclose(col[str((0, 0))], [4.0, 4.5])
    np.testing.assert_allclose(col[str(("y", (0,)))], [10.0, 10.5])
    np.testing.assert_allclose(col[str(("y", "y"))], [25.0, 24.5])
    assert lay.phiphi[0, 1] == lay.phi[0]  # x * 1 is the column x
