"""Voronoi losses, per-parameter errors and density errors (losses.md)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moestat import InputError, MixtureOfExperts
from moestat import losses as L
from moestat.fit import near_truth

M2 = MixtureOfExperts.create("softmax", "linear", "gaussian", n_experts=2, n_features=1)
M3 = MixtureOfExperts.create("softmax", "linear", "gaussian", n_experts=3, n_features=1)
TRUTH = M2.from_named({"gate.beta1": [[2.0], [0.0]], "gate.beta0": [-0.5, 0.0],
                       "expert.a": [[-2.0], [2.0]], "expert.b": [1.5, -0.5],
                       "noise.var": [0.09, 0.16]})
LOSSES = {"D1": L.d1, "D2": L.d2, "D_LSE": L.d_lse, "D_r2": lambda m, f, t: L.d_r(m, f, t, 2)}


def perturbed(model, key, scale):
    return near_truth(model, TRUTH, key, scale)


def permute(model, params, perm):
    perm = jnp.asarray(perm)
    k = model.n_experts
    p = jax.tree_util.tree_map(lambda v: v[perm] if v.ndim >= 1 and v.shape[0] == k else v,
                               params)
    return model.canonicalize(p)


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("model", [M2, M3], ids=["exact", "over"])
def test_zero_at_truth(name, model):
    start = near_truth(model, TRUTH, jax.random.PRNGKey(0), 0.0)  # exact split for k = 3
    assert float(LOSSES[name](model, start, TRUTH)) == pytest.approx(0.0, abs=1e-15)


SEEDS = st.integers(0, 2**30)


@settings(max_examples=25, deadline=None)
@given(seed=SEEDS, perm=st.permutations([0, 1, 2]), scale=st.floats(0.001, 0.05))
def test_invariant_to_permuting_fitted_experts(seed, perm, scale):
    f = perturbed(M3, jax.random.PRNGKey(seed), scale)
    g = permute(M3, f, perm)
    for name, loss in LOSSES.items():
        assert float(loss(M3, g, TRUTH)) == pytest.approx(float(loss(M3, f, TRUTH)),
                                                          rel=1e-9, abs=1e-14), name


@settings(max_examples=25, deadline=None)
@given(seed=SEEDS, c1=st.floats(-5, 5), c0=st.floats(-5, 5), scale=st.floats(0.001, 0.05))
def test_invariant_to_softmax_gauge(seed, c1, c0, scale):
    f = perturbed(M3, jax.random.PRNGKey(seed), scale)
    shifted = f._replace(gate=f.gate._replace(beta1=f.gate.beta1 + c1, beta0=f.gate.beta0 + c0))
    for name, loss in LOSSES.items():
        assert float(loss(M3, shifted, TRUTH)) == pytest.approx(float(loss(M3, f, TRUTH)),
                                                                rel=1e-9, abs=1e-14), name


@settings(max_examples=25, deadline=None)
@given(seed=SEEDS, t=st.floats(0.001, 0.05))
def test_grows_with_perturbation_size(seed, t):
    direction = perturbed(M2, jax.random.PRNGKey(seed), 1.0)
    delta = jax.tree_util.tree_map(lambda a, b: a - b, direction, TRUTH)

    def at(s):
        return M2.canonicalize(jax.tree_util.tree_map(lambda a, d: a + s * d, TRUTH, delta))

    for name, loss in LOSSES.items():
        small, large = float(loss(M2, at(t), TRUTH)), float(loss(M2, at(2 * t), TRUTH))
        assert large > small > 0, name


@settings(max_examples=25, deadline=None)
@given(seed=SEEDS, scale=st.floats(0.001, 0.2))
def test_d2_equals_d1_when_exact_specified(seed, scale):
    f = perturbed(M2, jax.random.PRNGKey(seed), scale)
    assert float(L.d2(M2, f, TRUTH)) == pytest.approx(float(L.d1(M2, f, TRUTH)), rel=1e-12)
    assert float(L.d_lse(M2, f, TRUTH)) == pytest.approx(float(L.d1(M2, f, TRUTH)), rel=1e-12)


# ---- hand-computed examples -------------------------------------------------------------
HAND = M3.from_named({"gate.beta1": [[2.1], [1.9], [0.0]],
                      "gate.beta0": [np.log(0.3), np.log(0.3), 0.0],
                      "expert.a": [[-2.0], [-1.8], [2.2]], "expert.b": [1.5, 1.6, -0.5],
                      "noise.var": [0.1, 0.09, 0.16]})
# cells: atoms 0, 1 -> true atom 0 (two-atom cell); atom 2 -> true atom 1 (singleton)
W_TRUE0 = np.exp(-0.5)
WEIGHT_TERM = abs(0.6 - W_TRUE0) + abs(1.0 - 1.0)
D_ATOM = {  # (|d beta1|, |d a|, |d b|, |d var|) per fitted atom
    0: (0.1, 0.0, 0.0, 0.01), 1: (0.1, 0.2, 0.1, 0.0), 2: (0.0, 0.2, 0.0, 0.0)}
W = {0: 0.3, 1: 0.3, 2: 1.0}


def hand(exps_cell, exps_single):
    total = WEIGHT_TERM
    for i in (0, 1):
        total += W[i] * sum(d**e for d, e in zip(D_ATOM[i], exps_cell, strict=True))
    total += W[2] * sum(d**e for d, e in zip(D_ATOM[2], exps_single, strict=True))
    return total


@pytest.mark.parametrize("name,expected", [
    ("D1", hand((1, 1, 1, 1), (1, 1, 1, 1))),
    ("D2", hand((4, 2, 4, 2), (1, 1, 1, 1))),
    ("D_LSE", hand((2, 2, 2, 2), (1, 1, 1, 1))),
    ("D_r2", hand((2, 2, 2, 2), (2, 2, 2, 2))),
])
def test_hand_computed(name, expected):
    assert float(LOSSES[name](M3, HAND, TRUTH)) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_laplace_gate_fixes_the_exponents_of_w_and_a():
    """D2 under the Laplace gate (arXiv 2402.03226): in an over-fitted cell ||dW|| and ||da||
    at 2 whatever the cell's size, b at rbar, var at rbar / 2; the same atoms as HAND with
    the softmax slopes read as locations W."""
    lap3 = MixtureOfExperts.create("laplace", "linear", "gaussian", n_experts=3, n_features=1)
    lap2 = MixtureOfExperts.create("laplace", "linear", "gaussian", n_experts=2, n_features=1)

    def as_laplace(model, params):
        return model.from_named({("gate.W" if k == "gate.beta1" else k): v
                                 for k, v in M3.named(params).items()})

    fitted, truth = as_laplace(lap3, HAND), as_laplace(lap2, TRUTH)
    assert float(L.d2(lap3, fitted, truth)) == pytest.approx(hand((2, 2, 4, 2), (1, 1, 1, 1)),
                                                             rel=1e-12)
    assert float(L.d1(lap3, fitted, truth)) == pytest.approx(hand((1, 1, 1, 1), (1, 1, 1, 1)),
                                                             rel=1e-12)


def test_parameter_errors_by_cell_type():
    e = {k: float(v) for k, v in L.parameter_errors(M3, HAND, TRUTH).items()}
    assert e["a@overfitted"] == pytest.approx(0.2, rel=1e-12)
    assert e["a@singleton"] == pytest.approx(0.2, rel=1e-12)
    assert e["b@overfitted"] == pytest.approx(0.1, rel=1e-12)
    assert e["b@singleton"] == pytest.approx(0.0, abs=1e-15)
    assert e["beta0_weight"] == pytest.approx(abs(0.6 - W_TRUE0), rel=1e-12)
    assert e["empty_cells"] == 0.0


def test_empty_cell_is_reported_and_keeps_its_weight():
    far = M2.from_named({"gate.beta1": [[2.0], [0.0]], "gate.beta0": [-0.5, 0.0],
                         "expert.a": [[2.1], [2.0]], "expert.b": [-0.4, -0.5],
                         "noise.var": [0.16, 0.16]})  # both fitted atoms near true atom 1
    e = L.parameter_errors(M2, far, TRUTH)
    assert float(e["empty_cells"]) == 1.0
    assert float(L.d1(M2, far, TRUTH)) >= W_TRUE0  # the missed atom's weight stays in


def test_d2_refuses_unknown_cell_sizes():
    m5 = MixtureOfExperts.create("softmax", "linear", "gaussian", n_experts=5, n_features=1)
    f = near_truth(m5, TRUTH, jax.random.PRNGKey(0), 0.0, assignment=[0, 0, 0, 0, 1])
    with pytest.raises(InputError, match="rbar for cells of \\[4\\]"):
        L.check_d2_cells(m5, f, TRUTH)
    assert np.isnan(float(L.d2(m5, f, TRUTH)))  # traced code signals it with NaN
    assert float(L.d2(m5, f, TRUTH, rbar={4: 8.0})) == pytest.approx(0.0, abs=1e-15)


def test_losses_vmap_over_replicates():
    fs = [perturbed(M3, jax.random.PRNGKey(s), 0.02) for s in range(4)]
    stack = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *fs)
    batched = jax.jit(jax.vmap(lambda f: L.d2(M3, f, TRUTH)))(stack)
    np.testing.assert_allclose(batched, [float(L.d2(M3, f, TRUTH)) for f in fs], rtol=1e-12)


def test_prompt_errors():
    from moestat import FrozenExpert

    frozen = FrozenExpert.create("ridge_nobias:tanh", "laplace", {"eta": [1.0, 0.0]}, 0.001)
    m = MixtureOfExperts.create("contaminated", "ridge_nobias:tanh", "gaussian", n_experts=1,
                                n_features=2, frozen=frozen)
    t = m.from_named({"gate.beta": [0.3, 0.3], "gate.tau": 1.0, "expert.eta": [[-1.0, 0.0]],
                      "noise.var": [0.001]})
    f = m.from_named({"gate.beta": [0.3, 0.7], "gate.tau": 1.1, "expert.eta": [[-1.0, 0.3]],
                      "noise.var": [0.0012]})
    e = {k: float(v) for k, v in L.prompt_errors(m, f, t).items()}
    assert e["exp_tau"] == pytest.approx(np.exp(1.1) - np.exp(1.0), rel=1e-12)
    assert e["beta"] == pytest.approx(0.4, rel=1e-12)
    assert e["eta"] == pytest.approx(0.3, rel=1e-12)
    assert e["nu"] == pytest.approx(0.0002, rel=1e-9)


def test_hellinger_and_l2():
    X = jax.random.normal(jax.random.PRNGKey(0), (64, 1))
    assert float(L.hellinger(M2, TRUTH, TRUTH, X)) == pytest.approx(0.0, abs=1e-12)
    # one Gaussian vs a shifted one: h^2 = 1 - exp(-d^2 / (8 v)) for equal variances
    m1 = MixtureOfExperts.create("softmax", "constant", "gaussian", n_experts=1, n_features=1)
    p = m1.from_named({"gate.beta1": [[0.0]], "gate.beta0": [0.0], "expert.b": [0.0],
                       "noise.var": [1.0]})
    q = p._replace(expert=p.expert._replace(b=jnp.array([0.5])))
    expected = np.sqrt(1 - np.exp(-(0.5**2) / 8))
    assert float(L.hellinger(m1, q, p, X)) == pytest.approx(expected, rel=1e-9)
    assert float(L.l2_error(m1, q, p, X)) == pytest.approx(0.5, rel=1e-12)


def test_sigmoid_gate_weights_and_d_lse_hand_computed():
    m = MixtureOfExperts.create("sigmoid", "ridge:tanh", "gaussian", n_experts=2, n_features=1,
                                kind="regression")
    t = m.from_named({"gate.beta1": [[2.0], [-1.0]], "gate.beta0": [0.0, 1.0],
                      "expert.a": [[1.0], [-1.0]], "expert.b": [0.5, 0.0], "noise.var": 0.1})
    f = m.from_named({"gate.beta1": [[2.1], [-1.0]], "gate.beta0": [0.2, 1.0],
                      "expert.a": [[1.0], [-1.2]], "expert.b": [0.5, 0.0], "noise.var": 0.1})
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    expected = abs(sig(0.2) - sig(0.0)) + sig(0.2) * 0.1 + sig(1.0) * 0.2
    assert float(L.d_lse(m, f, t)) == pytest.approx(expected, rel=1e-12)


def test_temperature_term_is_added():
    m = MixtureOfExperts.create("temperature_softmax", "linear", "gaussian", n_experts=2,
                                n_features=1)
    t = m.from_named({"gate.beta1": [[2.0], [0.0]], "gate.beta0": [0.0, 0.0], "gate.tau": 1.0,
                      "expert.a": [[1.0], [-1.0]], "expert.b": [0.5, 0.0],
                      "noise.var": [0.1, 0.1]})
    f = t._replace(gate=t.gate._replace(tau=jnp.asarray(1.3)))
    assert float(L.d1(m, f, t)) == pytest.approx(0.3, rel=1e-12)
    assert float(L.parameter_errors(m, f, t)["tau"]) == pytest.approx(0.3, rel=1e-12)


def test_activation_gate_aligns_only_its_true_symmetry():
    """softmax(tanh(beta1 x)/tau + beta0): a common beta0 shift is a symmetry (loss 0), a
    common beta1 shift is not (it changes the weights, so the loss must see it)."""
    m = MixtureOfExperts.create("activation_temperature_softmax:tanh", "linear", "gaussian",
                                n_experts=2, n_features=1)
    t = m.from_named({"gate.beta1": [[3.0], [0.0]], "gate.beta0": [-1.0, 0.0], "gate.tau": 0.5,
                      "expert.a": [[-2.0], [2.0]], "expert.b": [1.5, -0.5],
                      "noise.var": [0.09, 0.16]})
    assert m.gate.shift_invariant == ("beta0",)
    shifted0 = t._replace(gate=t.gate._replace(beta0=t.gate.beta0 + 0.7))
    shifted1 = t._replace(gate=t.gate._replace(beta1=t.gate.beta1 + 0.7))
    X = jnp.linspace(0, 1, 7)[:, None]
    assert np.allclose(m.gate_weights(shifted0, X), m.gate_weights(t, X), atol=1e-14)
    assert not np.allclose(m.gate_weights(shifted1, X), m.gate_weights(t, X), atol=1e-3)
    assert float(L.d1(m, shifted0, t)) == pytest.approx(0.0, abs=1e-12)
    assert float(L.d1(m, shifted1, t)) > 0.1


def test_temperature_scale_ray_is_invisible_to_the_model_and_to_scaled_losses():
    """(beta1, beta0, tau) -> c (beta1, beta0, tau) leaves the temperature gate unchanged: the
    raw D1 sees |c - 1| (beta and tau differences), the loss after `to_truth_scale`
    is 0, and a genuine change of beta1 / tau is still seen after rescaling."""
    m = MixtureOfExperts.create("temperature_softmax", "linear", "gaussian", n_experts=2,
                                n_features=1)
    t = m.from_named({"gate.beta1": [[12.5], [0.0]], "gate.beta0": [-4.0, 0.0],
                      "gate.tau": 0.5, "expert.a": [[-20.0], [20.0]], "expert.b": [15.0, -5.0],
                      "noise.var": [0.09, 0.16]})
    c = 1.3
    g = t.gate
    ray = t._replace(gate=g._replace(beta1=c * g.beta1, beta0=c * g.beta0, tau=c * g.tau))
    X = jnp.linspace(0, 1, 9)[:, None]
    assert np.allclose(m.gate_weights(ray, X), m.gate_weights(t, X), atol=1e-14)
    assert float(L.d1(m, ray, t)) > 0.15  # |d tau| = 0.15 plus w_1 |d beta1|
    assert float(L.d1(m, L.to_truth_scale(m, ray, t), t)) == pytest.approx(0, abs=1e-12)
    moved = ray._replace(gate=ray.gate._replace(beta1=ray.gate.beta1 * 1.1))
    scaled = L.to_truth_scale(m, moved, t)
    assert float(scaled.gate.tau) == pytest.approx(0.5)
    assert float(L.parameter_errors(m, scaled, t)["beta1"]) == pytest.approx(1.25, rel=1e-12)


def test_cell_l2_ignores_how_a_cell_splits_its_atom():
    """Sigmoid gate, ReLU ridge experts (positively homogeneous): copies of a true atom with
    the true gate and amplitudes c and 1 - c reproduce it exactly, so the cell's share of the
    regression function is exact although each copy's expert is (1 - c) |a*| away; a gate
    error shows up in the cell it belongs to only."""
    k2 = MixtureOfExperts.create("sigmoid", "ridge:relu", "gaussian", n_experts=2,
                                 n_features=1, kind="regression")
    k3 = MixtureOfExperts.create("sigmoid", "ridge:relu", "gaussian", n_experts=3,
                                 n_features=1, kind="regression")
    truth = k2.from_named({"gate.beta1": [[8.0], [-8.0]], "gate.beta0": [-4.0, 4.0],
                           "expert.a": [[6.0], [-6.0]], "expert.b": [-4.5, 1.5],
                           "noise.var": 4e-4})
    X = jnp.linspace(0.0, 1.0, 501)[:, None]
    c = 0.3
    split = k3.from_named({"gate.beta1": [[8.0], [8.0], [-8.0]], "gate.beta0": [-4.0, -4.0, 4.0],
                           "expert.a": [[6.0 * c], [6.0 * (1 - c)], [-6.0]],
                           "expert.b": [-4.5 * c, -4.5 * (1 - c), 1.5], "noise.var": 4e-4})
    cell = L.cell_l2_errors(k3, split, truth, X)
    assert float(cell["cell_l2"]) < 1e-12 and float(L.l2_error(k3, split, truth, X)) < 1e-12
    assert float(L.parameter_errors(k3, split, truth)["a@overfitted"]) > 0.69 * 6.0
    moved = split._replace(gate=split.gate._replace(beta0=split.gate.beta0.at[2].add(0.5)))
    cell = L.cell_l2_errors(k3, moved, truth, X)
    assert float(cell["cell_l2@overfitted"]) < 1e-12 < float(cell["cell_l2@singleton"])
    np.testing.assert_allclose(cell["cell_l2@singleton"], L.l2_error(k3, moved, truth, X),
                               rtol=1e-12)


def test_split_cells_counts_true_atoms_served_by_several_active_atoms():
    """T1 of topk_softmax (k* = 3, K = 2) fitted with k = 4, K_fit = 2: the split start (true
    atom 3 copied twice, both in the top two somewhere) is stuck (1); the truth plus a copy of
    atom 3 whose logit is 40 below (never in the top two: switched off) has escaped (0)."""
    named = {"gate.beta1": [[-3.0], [3.0], [0.0]], "gate.beta0": [-2.0, -2.0, 0.0],
             "expert.a": [[1.0], [-1.0], [0.0]], "expert.b": [-2.0, -2.0, 2.0],
             "noise.var": [0.25, 0.25, 0.25]}
    topk3, topk4 = (MixtureOfExperts.create("topk_softmax:2", "linear", "gaussian",
                                            n_experts=k, n_features=1) for k in (3, 4))
    truth = topk3.from_named(named)
    X = jnp.linspace(-1, 1, 201)[:, None]
    split = near_truth(topk4, truth, jax.random.PRNGKey(0), 0.0, assignment=[0, 1, 2, 2])
    assert float(L.split_cells(topk4, split, truth, X)) == 1.0
    off = topk4.canonicalize(topk4.from_named(
        {"gate.beta1": [[-3.0], [3.0], [0.0], [0.0]], "gate.beta0": [-2.0, -2.0, 0.0, -40.0],
         "expert.a": [[1.0], [-1.0], [0.0], [0.0]], "expert.b": [-2.0, -2.0, 2.0, 2.0],
         "noise.var": [0.25, 0.25, 0.25, 0.25]}))
    assert float(L.split_cells(topk4, off, truth, X)) == 0.0
