"""Unit tests of the model parts: formulas, gauge, conventions, sampling."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from moestat import FrozenExpert, InputError, MixtureOfExperts
from moestat.fit import near_truth
from moestat.registry import make_expert, make_gate

KEY = jax.random.PRNGKey(0)
X = jax.random.normal(KEY, (7, 2))


def softmax_model(k=3, d=2, **kw):
    return MixtureOfExperts.create("softmax", "linear", "gaussian", n_experts=k, n_features=d,
                                   **kw)


def test_log_prob_matches_hand_formula():
    m = softmax_model()
    p = m.from_named({"gate.beta1": [[1.0, -1.0], [0.5, 2.0], [0.0, 0.0]],
                      "gate.beta0": [0.2, -0.3, 0.0], "expert.a": [[1, 2], [-1, 0], [0, 3.0]],
                      "expert.b": [0.5, -0.5, 1.0], "noise.var": [0.5, 1.0, 2.0]})
    x, y = np.asarray(X), np.linspace(-1, 1, 7)
    logits = x @ np.asarray(p.gate.beta1).T + np.asarray(p.gate.beta0)
    w = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    means = x @ np.asarray(p.expert.a).T + np.asarray(p.expert.b)
    dens = stats.norm.pdf(y[:, None], means, np.sqrt([0.5, 1.0, 2.0]))
    expected = np.log((w * dens).sum(axis=1))
    np.testing.assert_allclose(m.log_prob(p, X, jnp.asarray(y)), expected, rtol=1e-12)
    np.testing.assert_allclose(m.mean(p, X), (w * means).sum(axis=1), rtol=1e-12)


def test_softmax_gauge_is_enforced_and_harmless():
    m = softmax_model()
    p = m.zeros()
    p = p._replace(gate=p.gate._replace(beta1=jnp.ones((3, 2)) * jnp.arange(3.0)[:, None],
                                        beta0=jnp.array([1.0, 2.0, 3.0])))
    c = m.canonicalize(p)
    assert np.all(np.asarray(c.gate.beta1[-1]) == 0) and float(c.gate.beta0[-1]) == 0
    np.testing.assert_allclose(m.gate_weights(c, X), m.gate_weights(p, X), rtol=1e-12)
    # free coordinates drop the gauge row; round trip restores it
    free = m.to_free(c)
    assert free.gate.beta1.shape == (2, 2)
    back = m.from_free(free)
    np.testing.assert_allclose(back.gate.beta1, c.gate.beta1)
    assert m.n_free_parameters() == 2 * 3 + 3 * 3 + 3


def test_topk_zero_weights_and_ties_by_lowest_index():
    g = make_gate("topk_softmax:2")
    p = g.zeros(3, 1)
    w = g.weights(p, jnp.zeros((1, 1)))  # all logits tie at 0: experts 0 and 1 are active
    np.testing.assert_allclose(w, [[0.5, 0.5, 0.0]])
    p = p._replace(beta1=jnp.array([[1.0], [-1.0], [0.0]]))
    w = np.asarray(g.weights(p, jnp.array([[2.0], [-2.0]])))
    assert w[0, 1] == 0.0 and w[1, 0] == 0.0
    np.testing.assert_allclose(w.sum(axis=1), 1.0)


def test_laplace_variance_convention():
    m = MixtureOfExperts.create("softmax", "constant", "laplace", n_experts=1, n_features=1)
    p = m.from_named({"gate.beta1": [[0.0]], "gate.beta0": [0.0], "expert.b": [0.0],
                      "noise.var": [2.0]})
    y = m.sample(KEY, p, jnp.zeros((200_000, 1)))
    assert abs(float(jnp.var(y)) - 2.0) < 0.05  # var = 2 s^2, so s = 1
    # density: Laplace(0, s=1)
    np.testing.assert_allclose(m.log_prob(p, jnp.zeros((1, 1)), jnp.array([0.7])),
                               stats.laplace.logpdf(0.7, scale=1.0), rtol=1e-12)


def test_sampling_follows_the_gate():
    m = softmax_model(k=2, d=1)
    p = m.from_named({"gate.beta1": [[0.0], [0.0]], "gate.beta0": [np.log(3.0), 0.0],
                      "expert.a": [[0.0], [0.0]], "expert.b": [10.0, -10.0],
                      "noise.var": [0.01, 0.01]})
    y = m.sample(KEY, p, jnp.zeros((40_000, 1)))
    assert abs(float(jnp.mean(y > 0)) - 0.75) < 0.01  # weight 3/(3+1)


def test_contaminated_model_components():
    frozen = FrozenExpert.create("ridge_nobias:tanh", "laplace", {"eta": [1.0, 0.0]}, 0.001)
    m = MixtureOfExperts.create("contaminated", "ridge_nobias:tanh", "gaussian", n_experts=1,
                                n_features=2, frozen=frozen)
    p = m.from_named({"gate.beta": [0.5, 0.5], "gate.tau": 1.0, "expert.eta": [[-1.0, 0.0]],
                      "noise.var": [0.001]})
    w = np.asarray(m.gate_weights(p, X))
    prompt = 1 / (1 + np.exp(-(np.asarray(X) @ np.array([0.5, 0.5]) + 1.0)))
    np.testing.assert_allclose(w[:, 0], prompt, rtol=1e-12)
    np.testing.assert_allclose(w.sum(axis=1), 1.0)
    means = np.asarray(m.expert_means(p, X))
    np.testing.assert_allclose(means[:, 1], np.tanh(np.asarray(X)[:, 0]), rtol=1e-12)
    np.testing.assert_allclose(means[:, 0], np.tanh(-np.asarray(X)[:, 0]), rtol=1e-12)


def test_quadratic_gate_coefficients_round_trip():
    g = make_gate("quadratic_softmax")
    p = g.zeros(2, 2)._replace(A=jnp.array([[[1.0, 2.0], [0.0, 3.0]], [[0, 0], [0, 0.0]]]),
                               beta1=jnp.array([[1.0, -1.0], [0, 0]]), beta0=jnp.array([0.5, 0]))
    z_direct = g.logits(p, X)
    z_features = g.logit_features(X) @ g.to_coef(p).T
    np.testing.assert_allclose(z_direct, z_features, rtol=1e-12)
    back = g.from_coef(g.to_coef(p), p)
    np.testing.assert_allclose(g.logits(back, X), z_direct, rtol=1e-12)


def test_polynomial_design_monomials():
    e = make_expert("polynomial:2")
    assert e.monomials(2) == [(), (0,), (1,), (0, 0), (0, 1), (1, 1)]
    D = np.asarray(e.design(X))
    x = np.asarray(X)
    np.testing.assert_allclose(D[:, 4], x[:, 0] * x[:, 1])


def test_near_truth_splits_atoms_for_overspecified_fit():
    truth_model = softmax_model(k=2, d=1)
    truth = truth_model.from_named({"gate.beta1": [[3.0], [0.0]], "gate.beta0": [1.0, 0.0],
                                    "expert.a": [[1.0], [-1.0]], "expert.b": [0.0, 1.0],
                                    "noise.var": [0.1, 0.2]})
    fitted = softmax_model(k=3, d=1)
    start = near_truth(fitted, truth, KEY, scale=0.0)
    xs = jnp.linspace(-1, 1, 11)[:, None]
    w = np.asarray(fitted.gate_weights(start, xs))
    # atom 0 is split in two copies: together they carry its weight
    np.testing.assert_allclose(w[:, 0] + w[:, 1], truth_model.gate_weights(truth, xs)[:, 0],
                               rtol=1e-12)
    np.testing.assert_allclose(fitted.log_prob(start, xs, xs[:, 0]),
                               truth_model.log_prob(truth, xs, xs[:, 0]), rtol=1e-12)


@pytest.mark.parametrize("gate", ["softmax", "temperature_softmax",
                                  "activation_temperature_softmax:tanh"])
def test_split_start_reproduces_the_truth_for_every_softmax_family_gate(gate):
    """Splitting atom 0 of a k* = 2 truth into two copies gives the same density (shared
    scalars such as tau are kept, not indexed)."""
    named = {"gate.beta1": [[3.0], [0.0]], "gate.beta0": [1.0, 0.0], "expert.a": [[1.0], [-1.0]],
             "expert.b": [0.0, 1.0], "noise.var": [0.1, 0.2]}
    if gate != "softmax":
        named["gate.tau"] = 0.7
    truth_model = MixtureOfExperts.create(gate, "linear", "gaussian", n_experts=2, n_features=1)
    fitted = MixtureOfExperts.create(gate, "linear", "gaussian", n_experts=3, n_features=1)
    truth = truth_model.from_named(named)
    start = near_truth(fitted, truth, KEY, scale=0.0, assignment=(0, 0, 1))
    xs = jnp.linspace(-1, 1, 11)[:, None]
    np.testing.assert_allclose(fitted.log_prob(start, xs, xs[:, 0]),
                               truth_model.log_prob(truth, xs, xs[:, 0]), rtol=1e-12)


@pytest.mark.parametrize("kwargs,msg", [
    (dict(gate="sigmoid"), "not normalised"),
    (dict(gate="contaminated"), "needs a frozen expert"),
    (dict(gate="topk_softmax:5"), "exceeds n_experts"),
    (dict(expert="ridge:identity"), "nonlinear activation"),
    (dict(expert="polynomial:x"), "integer argument"),
    (dict(gate="cosine:4:0.1"), "exceeds n_experts"),
    (dict(gate="cosine:2:-1"), "TAU >= 0"),
    (dict(gate="cosine:2:x"), "TAU >= 0"),
    (dict(gate="cosine:0:0.1"), "argument >= 1"),
])
def test_invalid_models_are_refused(kwargs, msg):
    args = {"gate": "softmax", "expert": "linear", "noise": "gaussian", **kwargs}
    with pytest.raises(InputError, match=msg):
        MixtureOfExperts.create(args["gate"], args["expert"], args["noise"], n_experts=3,
                                n_features=1)


@pytest.mark.parametrize("spec", ["softmax", "topk_softmax:2", "temperature_softmax",
                                  "activation_temperature_softmax:tanh", "sigmoid",
                                  "quadratic_softmax", "quadratic_sigmoid", "cosine:2:0.1",
                                  "laplace", "modified_softmax:tanh"])
def test_gate_split_gives_every_field_its_copies(spec):
    """An over-specified start copies every per-expert gate field (the quadratic sigmoid gate
    once dropped A, so its over-specified fits all failed on shapes)."""
    from moestat.registry import make_gate

    gate = make_gate(spec)
    two, three = gate.shapes(2, 2), gate.shapes(3, 2)
    rng = np.random.default_rng(0)
    params = gate.Params(**{f: jnp.asarray(rng.normal(size=s)) for f, s in two.items()})
    split = gate.split(params, np.array([0, 0, 1]))
    for f, shape in three.items():
        assert getattr(split, f).shape == shape, (spec, f)


def test_modified_softmax_gate_is_the_softmax_gate_on_bounded_inputs():
    """modified_softmax:ACT is the softmax gate applied to ACT(x); unbounded maps refused."""
    from moestat.registry import make_gate

    rng = np.random.default_rng(3)
    X = jnp.asarray(rng.normal(size=(30, 2)) * 3)
    params = make_gate("softmax").Params(jnp.asarray(rng.normal(size=(3, 2))),
                                         jnp.asarray([0.2, -0.1, 0.0]))
    for act, f in (("tanh", np.tanh), ("sigmoid", lambda z: 1 / (1 + np.exp(-z)))):
        w = make_gate(f"modified_softmax:{act}").weights(params, X)
        np.testing.assert_allclose(w, make_gate("softmax").weights(params, jnp.asarray(
            f(np.asarray(X)))), rtol=1e-12)
    with pytest.raises(InputError, match="bounded map"):
        make_gate("modified_softmax:relu")


def test_laplace_gate_is_the_softmax_of_negative_distances():
    """The Laplace gate against its formula in NumPy: softmax_i(-||W_i - x|| + beta0_i),
    unsquared distance; finite weights and gradients at x = W_i (the kink)."""
    from moestat.registry import make_gate

    gate = make_gate("laplace")
    rng = np.random.default_rng(2)
    W, beta0 = rng.normal(size=(3, 2)), np.array([0.4, -0.3, 0.0])
    X = np.vstack([rng.normal(size=(40, 2)), W[1]])
    params = gate.Params(jnp.asarray(W), jnp.asarray(beta0))
    w = np.asarray(gate.weights(params, jnp.asarray(X)))
    z = beta0 - np.linalg.norm(X[:, None, :] - W[None], axis=-1)
    expect = np.exp(z - z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(w, expect / expect.sum(axis=1, keepdims=True), rtol=1e-12)
    grad = jax.grad(lambda p: jnp.sum(gate.log_weights(p, jnp.asarray(X[-1:]))[:, 0]))(params)
    assert all(np.all(np.isfinite(np.asarray(g))) for g in grad)


@pytest.mark.parametrize("tau", [0.1, 0.0])
def test_cosine_gate_is_the_top_k_softmax_of_perturbed_cosine_scores(tau):
    """The cosine router's weights against the formula written out in NumPy: softmax over the
    K = 2 largest of beta1_i . x / ((||beta1_i|| + tau)(||x|| + tau)) + beta0_i, the others
    exactly 0; a zero slope row scores 0 (also for the vanilla router, tau = 0), x = 0 too."""
    from moestat.registry import make_gate

    gate = make_gate(f"cosine:2:{tau}")
    assert gate.label == f"cosine:2:{tau:g}" and make_gate("cosine").label == "cosine:all:0.1"
    rng = np.random.default_rng(1)
    beta1 = np.vstack([rng.normal(size=(2, 3)), np.zeros((1, 3))])
    beta0 = np.array([0.3, -0.2, 0.0])
    X = np.vstack([rng.normal(size=(50, 3)), np.zeros((1, 3))])
    w = np.asarray(gate.weights(gate.Params(jnp.asarray(beta1), jnp.asarray(beta0)),
                                jnp.asarray(X)))
    den = (np.linalg.norm(beta1, axis=1)[None] + tau) * (np.linalg.norm(X, axis=1)[:, None] + tau)
    score = np.where(den > 0, X @ beta1.T / np.where(den > 0, den, 1), 0) + beta0
    top = np.argsort(-score, axis=1, kind="stable")[:, :2]
    expect = np.zeros_like(score)
    for t, (i, j) in enumerate(top):
        e = np.exp(score[t, [i, j]] - score[t, [i, j]].max())
        expect[t, [i, j]] = e / e.sum()
    np.testing.assert_allclose(w, expect, rtol=1e-12, atol=1e-15)
    assert np.all((w == 0).sum(axis=1) == 1)


def test_a_sparse_cosine_routers_split_copies_are_routed_and_a_dense_ones_divide_the_weight():
    """The cosine_router truth (small router rows, scores within 0.1 of beta0) split with the
    first atom copied: under top-K (K = 4 of 9) both copies keep its score and receive data on
    the inputs the atom got; beta0 - log 2 would rank them last everywhere (mass 0). With every
    expert active the copies divide the atom's weight, so the gate weights are unchanged."""
    from moestat.experiments.recipes import gating_truth
    from moestat.registry import make_gate

    truth = gating_truth(seed=2414, d=32, k=8, gated=6)
    beta1, beta0 = (jnp.asarray(truth[f"gate.{f}"]) for f in ("beta1", "beta0"))
    X = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (4000, 32)))
    assignment = np.array([0, 0, 1, 2, 3, 4, 5, 6, 7])
    sparse = make_gate("cosine:4:0.1")
    copies = sparse.split(sparse.Params(beta1, beta0), assignment)
    np.testing.assert_array_equal(np.asarray(copies.beta0[:2]), np.asarray(beta0)[[0, 0]])
    mass = np.asarray(sparse.weights(copies, X).mean(axis=0))
    assert mass[0] > 0.05 and mass[1] > 0.05
    shifted = copies._replace(beta0=copies.beta0.at[:2].add(-np.log(2.0)))
    assert np.asarray(sparse.weights(shifted, X).mean(axis=0))[:2].max() < 1e-3
    dense = make_gate("cosine:all:0.1")
    w9 = np.asarray(dense.weights(dense.split(dense.Params(beta1, beta0), assignment), X))
    w8 = np.asarray(dense.weights(dense.Params(beta1, beta0), X))
    np.testing.assert_allclose(w9[:, 0] + w9[:, 1], w8[:, 0], rtol=1e-12)
    np.testing.assert_allclose(w9[:, 2:], w8[:, 1:], rtol=1e-12)
