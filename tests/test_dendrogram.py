"""The dendrogram of mixing measures (moestat/dendrogram.py): merges, heights, levels, DIC."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from moestat import InputError
from moestat.dendrogram import check_dendrogram_model, dendrogram
from moestat.model import MixtureOfExperts

TWO = {"gate.beta1": [[2.0], [0.0]], "gate.beta0": [0.3, 0.0], "expert.a": [[1.5], [-1.0]],
       "expert.b": [0.5, -0.5], "noise.var": [0.04, 0.09]}


def _split_truth():
    """The two-expert truth written with three atoms: atom 0 split in two copies whose
    weights p_0 / 2 each (intercepts beta0_0 - log 2) sum to the original's."""
    named = {k: np.asarray(v, float) for k, v in TWO.items()}
    three = {k: np.concatenate([v[:1], v]) for k, v in named.items()}
    three["gate.beta0"] = three["gate.beta0"] - np.array([np.log(2), np.log(2), 0.0])
    return named, three


def test_a_split_truth_merges_back_to_the_truth_and_dic_picks_two():
    """Exact duplicates merge first at height 0 into the original atom (weight p_0, the same
    parameters), so the 2-atom level has the truth's log-likelihood; the next merge joins
    distinct atoms (height > 0). DIC = -(height of the merge leaving the level + log n x mean
    log-likelihood) then prefers 2: level 3 has the same likelihood and height 0, level 1 a
    much lower likelihood."""
    named, three = _split_truth()
    m2 = MixtureOfExperts.create("softmax", "linear", "gaussian", n_experts=2, n_features=1)
    m3 = MixtureOfExperts.create("softmax", "linear", "gaussian", n_experts=3, n_features=1)
    truth = m2.from_named(named)
    X = np.random.default_rng(0).uniform(-1, 1, (500, 1))
    y = np.asarray(m2.sample(jax.random.PRNGKey(0), truth, X))
    w = np.ones(len(y))
    tree = dendrogram(m3, m3.canonicalize(m3.from_named(three)), X, y, w)
    levels = {lv["k"]: lv for lv in tree["levels"]}
    assert levels[3]["merged"] == [0, 1] and levels[3]["height"] == pytest.approx(0, abs=1e-12)
    truth_mean = float(np.mean(m2.log_prob(truth, X, y)))
    assert levels[3]["mean_loglik"] == pytest.approx(truth_mean, rel=1e-10)
    assert levels[2]["mean_loglik"] == pytest.approx(truth_mean, rel=1e-10)
    assert levels[2]["height"] > 0.1 and levels[1]["mean_loglik"] < truth_mean - 0.1
    omega = np.log(500)
    assert tree["omega"] == pytest.approx(omega)
    for lv in tree["levels"]:
        assert lv["dic"] == pytest.approx(-(lv["height"] + omega * lv["mean_loglik"]))
    assert tree["selected_k"] == 2
    assert tree["weights"] == pytest.approx(np.asarray(jax.nn.softmax(three["gate.beta0"])))
    assert tree["linkage"][0][:2] == [0, 1] and tree["linkage"][1][:2] == [3, 2]


def test_the_height_is_the_weighted_squared_distance_and_merges_average_by_weight():
    """Two atoms: height p_0 p_1 / (p_0 + p_1) ||theta_0 - theta_1||^2 over (gate slope,
    expert slope and intercept, variance); the one-atom level is the weight-averaged atom,
    whose log-likelihood the tree reports (checked against the one-expert model)."""
    m2 = MixtureOfExperts.create("softmax", "linear", "gaussian", n_experts=2, n_features=1)
    m1 = MixtureOfExperts.create("softmax", "linear", "gaussian", n_experts=1, n_features=1)
    params = m2.from_named({k: np.asarray(v, float) for k, v in TWO.items()})
    p = np.asarray(jax.nn.softmax(np.asarray(TWO["gate.beta0"])))
    theta = np.array([[2.0, 1.5, 0.5, 0.04], [0.0, -1.0, -0.5, 0.09]])
    X = np.linspace(-1, 1, 50)[:, None]
    y = np.sin(3 * X[:, 0])
    tree = dendrogram(m2, params, X, y, np.ones(50), loglik_shift=-0.25)
    expected = p[0] * p[1] / (p[0] + p[1]) * np.sum((theta[0] - theta[1]) ** 2)
    assert tree["levels"][0]["height"] == pytest.approx(expected, rel=1e-12)
    mean = p @ theta
    one = m1.from_named({"gate.beta1": [[0.0]], "gate.beta0": [0.0], "expert.a": [[mean[1]]],
                         "expert.b": [mean[2]], "noise.var": [mean[3]]})
    assert tree["levels"][1]["mean_loglik"] == pytest.approx(
        float(np.mean(m1.log_prob(one, X, y))) - 0.25, rel=1e-10)


@pytest.mark.parametrize("gate", ["quadratic_softmax", "topk_softmax:1", "cosine:2:0.1"])
def test_only_the_softmax_gate_has_a_dendrogram(gate):
    model = MixtureOfExperts.create(gate, "linear", "gaussian", n_experts=2, n_features=1)
    with pytest.raises(InputError, match="needs a mixture with the softmax gate"):
        check_dendrogram_model(model)
