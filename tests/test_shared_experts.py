"""Shared + routed experts (the `shared:K1:INNER` gate), the normalized sigmoid gate and the
scaled ridge expert: weights, gauge, free coordinates, over-specified splits and the
two-family Voronoi losses."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from moestat import MixtureOfExperts
from moestat import losses as L
from moestat.errors import InputError
from moestat.registry import make_expert, make_gate

X = jnp.linspace(-3.0, 3.0, 7)[:, None]
TRUTH = {"gate.beta1": [[0.0], [5.0], [0.0]], "gate.beta0": [0.0, -0.5, 0.0],
         "expert.a": [[6.0], [-12.0], [12.0]], "expert.b": [0.0, 0.0, 0.0],
         "expert.c": [-8.0, 4.0, 4.0], "noise.var": [0.25, 0.4, 0.4]}


def models(inner="softmax"):
    """(truth model: 1 shared + 2 routed, fitted model: 2 shared + 3 routed, truth)."""
    tm = MixtureOfExperts.create(f"shared:1:{inner}", "scaled_ridge:relu", n_experts=3,
                                 n_features=1)
    fm = MixtureOfExperts.create(f"shared:2:{inner}", "scaled_ridge:relu", n_experts=5,
                                 n_features=1)
    return tm, fm, tm.canonicalize(tm.from_named(TRUTH))


@pytest.mark.parametrize("inner", ["softmax", "nsigmoid"])
def test_half_of_the_weight_is_shared_and_input_free(inner):
    _, fm, _ = models(inner)
    p = fm.canonicalize(fm.from_named({
        "gate.beta1": [[0.0], [0.0], [1.0], [-2.0], [0.5]],
        "gate.beta0": [0.7, 0.0, 0.3, -0.2, 0.1],
        "expert.a": [[1.0]] * 5, "expert.b": [0.0] * 5, "expert.c": [1.0] * 5,
        "noise.var": [1.0] * 5}))
    w = fm.gate_weights(p, X)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(w[:, :2].sum(axis=1), 0.5, atol=1e-12)
    np.testing.assert_allclose(w[:, :2], w[:1, :2].repeat(len(X), axis=0), atol=1e-12)
    np.testing.assert_allclose(w[0, :2], 0.5 * jax.nn.softmax(jnp.array([0.7, 0.0])),
                               atol=1e-12)
    assert np.ptp(np.asarray(w[:, 2])) > 0.05  # routed weights follow x


@pytest.mark.parametrize("inner,n_free", [("softmax", 1 + 2 * 2), ("nsigmoid", 1 + 3 * 2)])
def test_free_coordinates_are_the_shared_logits_and_the_routed_gate(inner, n_free):
    """K1 - 1 shared logits, then the routed gate's own free coordinates (softmax: its last
    row pinned; nsigmoid: none); a round trip returns canonical parameters."""
    _, fm, truth = models(inner)
    start = fm.canonicalize(fm.split(truth, np.array([0, 0, 1, 2, 2])))
    gate = fm.gate
    free = gate.to_free(start.gate)
    assert sum(int(np.size(v)) for v in free) == n_free
    back = gate.from_free(free)
    for a, b in zip(back, gate.canonicalize(start.gate), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-12)
    np.testing.assert_allclose(back.beta1[:2], 0.0)
    np.testing.assert_allclose(back.beta0[1], 0.0)  # the last shared logit is pinned


@pytest.mark.parametrize("inner", ["softmax", "nsigmoid"])
def test_an_over_specified_split_of_the_truth_is_the_truth(inner):
    """Copies divide their atom's weight (softmax exactly; the normalized sigmoid divides
    sigmoid(beta0), which changes the normaliser a little): the same density, loss 0."""
    tm, fm, truth = models(inner)
    split = fm.canonicalize(fm.split(truth, np.array([0, 0, 1, 2, 2])))
    y = jnp.linspace(-20.0, 20.0, 7)
    diff = np.abs(fm.log_prob(split, X, y) - tm.log_prob(truth, X, y)).max()
    if inner == "softmax":
        assert diff < 1e-10
        assert float(L.d_lse(fm, split, truth, truth_model=tm)) < 1e-10
    else:
        assert diff < 0.5
    with pytest.raises(InputError, match="mixes them"):
        fm.split(truth, np.array([0, 1, 1, 2, 2]))


def test_the_two_families_are_matched_apart_and_permutations_do_not_matter():
    tm, fm, truth = models()
    split = fm.split(truth, np.array([0, 0, 1, 2, 2]))
    moved = split._replace(expert=split.expert._replace(b=split.expert.b + 0.1))
    loss = float(L.d_lse(fm, fm.canonicalize(moved), truth, truth_model=tm))
    assert loss > 1e-3
    perm = np.array([1, 0, 4, 2, 3])  # within each family
    permuted = jax.tree_util.tree_map(lambda v: v[perm], moved)
    again = float(L.d_lse(fm, fm.canonicalize(permuted), truth, truth_model=tm))
    np.testing.assert_allclose(again, loss, rtol=1e-9)
    cells, *_ = L.match(fm, fm.canonicalize(moved), truth, tm)
    np.testing.assert_array_equal(np.asarray(cells).argmax(axis=1), [0, 0, 1, 2, 2])
    errors = L.parameter_errors(fm, fm.canonicalize(moved), truth, tm)
    np.testing.assert_allclose(errors["b@overfitted"], 0.1, rtol=1e-9)


def test_bad_specs_are_refused_in_one_line():
    for spec, message in (("shared:0", ">= 1"), ("shared:1:sigmoid", "routed gate"),
                          ("shared:x", "integer")):
        with pytest.raises(InputError, match=message):
            make_gate(spec)
    with pytest.raises(InputError, match="at least one routed"):
        MixtureOfExperts.create("shared:2", "linear", n_experts=2, n_features=1)
    assert make_gate("shared").label == "shared:1:softmax"


def test_nsigmoid_weights_and_intercept_weights():
    gate = make_gate("nsigmoid")
    p = gate.Params(beta1=jnp.array([[1.0], [-2.0], [0.0]]), beta0=jnp.array([0.3, -1.0, 2.0]))
    z = X @ p.beta1.T + p.beta0
    expected = jax.nn.sigmoid(z) / jax.nn.sigmoid(z).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(gate.weights(p, X), expected, atol=1e-12)
    w0 = gate.intercept_weight(p.beta0)  # the weights at x = 0
    np.testing.assert_allclose(w0, gate.weights(p, jnp.zeros((1, 1)))[0], atol=1e-12)


def test_scaled_relu_ridge_is_compared_in_the_gauge_of_unit_slopes():
    e = make_expert("scaled_ridge:relu")
    p = e.Params(a=jnp.array([[6.0], [-12.0]]), b=jnp.array([3.0, 0.0]),
                 c=jnp.array([-8.0, 4.0]))
    q = e.canonicalize(p)
    np.testing.assert_allclose(e.mean(q, X), e.mean(p, X), atol=1e-10)
    np.testing.assert_allclose(q.a, [[1.0], [-1.0]])
    np.testing.assert_allclose(q.c, [-48.0, 48.0])
    np.testing.assert_allclose(q.b, [0.5, 0.0])
    tanh = make_expert("scaled_ridge:tanh")
    assert tanh.canonicalize(p) is p  # tanh is not homogeneous: nothing to fix


MIXED = {"gate.beta1": [[0.0], [5.0], [5.0]], "gate.beta0": [0.0, -0.5, 0.5],
         "expert.a": [[6.0], [8.0], [-6.0]], "expert.b": [0.0, 2.0, 1.0],
         "expert.c": [-8.0, 1.0, 1.0], "noise.var": [0.25, 0.4, 0.4]}


def mixed_models():
    """Shared ReLU + routed linear experts (`scaled_ridge:relu/identity`): truth 1 + 2,
    fitted 2 + 3, and the canonical truth."""
    spec = "scaled_ridge:relu/identity"
    tm = MixtureOfExperts.create("shared:1:nsigmoid", spec, n_experts=3, n_features=1)
    fm = MixtureOfExperts.create("shared:2:nsigmoid", spec, n_experts=5, n_features=1)
    return tm, fm, tm.canonicalize(tm.from_named(MIXED))


def test_each_family_has_its_own_activation_and_gauge():
    """Shared rows are c ReLU(a x + b) in the gauge ||a|| = 1, routed rows a x + b (c = 1);
    the per-row mean EM differentiates is the model's column."""
    tm, fm, truth = mixed_models()
    assert (tm.expert.n_shared, fm.expert.n_shared) == (1, 2)
    e = truth.expert
    np.testing.assert_allclose(e.a[:, 0], [1.0, 8.0, -6.0])
    np.testing.assert_allclose(e.c, [-48.0, 1.0, 1.0])
    m = tm.expert.mean(e, X)
    np.testing.assert_allclose(m[:, 0], -8.0 * jax.nn.relu(6.0 * X[:, 0]), atol=1e-12)
    np.testing.assert_allclose(m[:, 1], 8.0 * X[:, 0] + 2.0, atol=1e-12)
    np.testing.assert_allclose(m[:, 2], -6.0 * X[:, 0] + 1.0, atol=1e-12)
    scaled = e._replace(a=e.a * 2.0, b=e.b * 2.0, c=e.c / 2.0)  # the same means
    np.testing.assert_allclose(tm.expert.mean(scaled, X), m, atol=1e-12)
    back = tm.expert.canonicalize(scaled)
    for u, v in zip(back, e, strict=True):
        np.testing.assert_allclose(u, v, atol=1e-12)
    for i in range(3):
        row = jax.tree_util.tree_map(lambda v, i=i: v[i:i + 1], e)
        np.testing.assert_allclose(tm.expert.row_mean(row, X, i), m[:, i], atol=1e-12)


def test_families_take_their_own_expert_and_a_split_truth_has_zero_loss():
    tm, fm, truth = mixed_models()
    split = fm.canonicalize(fm.split(truth, np.array([0, 0, 1, 2, 2])))
    labels = [(name, sub.expert.label) for name, sub, _ in fm.gate.families(fm, split)]
    assert labels == [("shared", "scaled_ridge:relu"), ("routed", "scaled_ridge:identity")]
    assert float(L.d_lse(fm, split, truth, truth_model=tm)) < 1e-12
    moved = split._replace(expert=split.expert._replace(b=split.expert.b.at[3].add(0.1)))
    errors = L.parameter_errors(fm, fm.canonicalize(moved), truth, tm)
    assert errors["b@overfitted"] > 0.01 and errors["b@singleton"] < 1e-12


def test_em_fits_shared_relu_and_routed_linear_experts():
    """Exact-specified EM from a perturbed truth (n = 4000, seed fixed): the ReLU expert's
    kink and amplitude and the linear experts' slopes within 0.1 relative (their standard
    errors at this n are ~0.01-0.03)."""
    from moestat.fit import FitOptions, fit

    tm, _, truth = mixed_models()
    X4 = jax.random.uniform(jax.random.PRNGKey(0), (4000, 1), minval=-3.0, maxval=3.0)
    y = tm.sample(jax.random.PRNGKey(1), truth, X4)
    start = jax.tree_util.tree_map(lambda v: v * 1.1, truth)
    res = fit(tm, X4, y, start, options=FitOptions(max_iter=500, tol=1e-10))
    got = tm.canonicalize(res.params).expert
    np.testing.assert_allclose(got.c, truth.expert.c, rtol=0.1)
    np.testing.assert_allclose(got.a[1:, 0], truth.expert.a[1:, 0], rtol=0.1)
    np.testing.assert_allclose(got.c[1:], 1.0)  # the routed gauge


def test_per_family_activations_need_a_shared_gate():
    with pytest.raises(InputError, match="shared:K1:INNER gate"):
        MixtureOfExperts.create("softmax", "scaled_ridge:relu/identity", n_experts=3,
                                n_features=1)
    with pytest.raises(InputError, match="unknown activation"):
        make_expert("scaled_ridge:relu/cubic")
    assert make_expert("scaled_ridge:relu/identity").label == "scaled_ridge:relu/identity"


def test_parameter_counts_leave_out_the_scale_gauges():
    """BIC's parameter count: a ReLU or linear-by-identity row c act(a x + b) has one direction
    (c s, a / s, b / s) that changes nothing; tanh rows have none."""
    tm, fm, _ = mixed_models()
    # routed nsigmoid gate 2 x (slope, intercept), no shared logit free at K1 = 1; 3 experts
    # of (a, b, c) less one gauge each; 3 variances
    assert tm.n_free_parameters() == 4 + 3 * 2 + 3
    assert fm.n_free_parameters() == (1 + 3 * 2) + 5 * 2 + 5
    tanh = MixtureOfExperts.create("softmax", "scaled_ridge:tanh", n_experts=3, n_features=1)
    assert tanh.n_free_parameters() == 2 * 2 + 3 * 3 + 3
