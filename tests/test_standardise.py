"""Fits on standardised data reported on the user's scale (moestat/standardise.py)."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from moestat.estimator import MixtureOfExpertsRegressor
from moestat.model import MixtureOfExperts
from moestat.standardise import (
    DataScaleWarning,
    Scaling,
    follows_x,
    follows_y,
    scaling_for,
    to_user_scale,
)


def _data(n=400, seed=3):
    """Two crossing lines under a softmax gate in x (a well-separated, identifiable truth)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, n)
    w = 1 / (1 + np.exp(-4 * x))
    z = rng.uniform(size=n) < w
    y = np.where(z, 2 * x + 1, -x - 0.5) + 0.2 * rng.normal(size=n)
    return x[:, None], y


@pytest.mark.parametrize("gate,expert", [("softmax", "linear"), ("temperature_softmax", "linear"),
                                         ("softmax", "constant")])
def test_parameters_map_back_exactly(gate, expert):
    """The same log-density on the user's scale: log p(y | x; mapped params) =
    log p(y' | x'; params) - log c, for arbitrary parameters (rounding only)."""
    model = MixtureOfExperts.create(gate, expert, "gaussian", n_experts=3, n_features=2)
    assert follows_x(model) and follows_y(model)
    rng = np.random.default_rng(0)
    params = model.canonicalize(jax.tree_util.tree_map(
        lambda v: jnp.asarray(rng.normal(size=np.shape(v))), model.zeros()))
    params = params._replace(noise=params.noise._replace(var=jnp.asarray([0.5, 1.0, 2.0])))
    s = Scaling(np.array([3.0, -2e3]), np.array([0.01, 5e2]), 7.0, 40.0)
    X = rng.normal(size=(50, 2)) * s.x_scale + s.x_shift
    y = rng.normal(size=50) * s.y_scale + s.y_shift
    Xs, ys = s.apply(X, y)
    user = to_user_scale(model, params, s)
    np.testing.assert_allclose(model.log_prob(user, X, y),
                               model.log_prob(params, Xs, ys) - np.log(s.y_scale), rtol=1e-9)
    assert float(jnp.abs(user.gate.beta1[-1]).max()) == 0.0  # the gauge row stays 0


@pytest.mark.parametrize("gate,expert,x_kept,y_kept", [
    ("quadratic_softmax", "linear", True, False),  # x^T A x cannot follow a shift of x
    ("softmax", "polynomial:2", True, True),
    ("softmax", "ridge:tanh", False, True),  # tanh(a x + b) cannot follow a scale of y
])
def test_parts_that_cannot_follow_keep_the_users_scale(gate, expert, x_kept, y_kept):
    X, y = _data()
    model = MixtureOfExperts.create(gate, expert, "gaussian", n_experts=2, n_features=1)
    s = scaling_for(model, X, y, np.ones(len(y)))
    assert (s.x_shift[0] == 0 and s.x_scale[0] == 1) == x_kept
    assert (s.y_shift == 0 and s.y_scale == 1) == y_kept


@pytest.mark.parametrize("scale,shift", [(1e3, 5.0), (1e-300, 0.0)])
def test_a_feature_scaled_by_1e3_gives_the_same_model_in_original_units(scale, shift):
    """Fit x and 1e3 x + 5 (and 1e-300 x, whose squares underflow): slopes scale by 1/scale,
    intercepts absorb the shift, and the log-likelihood, predictions and gate weights agree.
    Both fits see the same standardised problem (up to rounding in the column's mean and sd),
    so 1e-6 relative is ample; a wrong back-map would be off by orders of magnitude."""
    X, y = _data()
    fits = []
    for scale_, shift_ in [(1.0, 0.0), (scale, shift)]:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # neither fit may be degenerate or unconverged
            fits.append(MixtureOfExpertsRegressor(n_experts=2, n_init=4, random_state=0)
                        .fit(scale_ * X + shift_, y))
    a, b = fits
    assert b.loglik_ == pytest.approx(a.loglik_, rel=1e-6)
    pb, proba = _matched(b.params_, a.params_), b.predict_proba(scale * X + shift)
    if pb is not b.params_:  # the same optimum with the experts' labels swapped
        proba = proba[:, ::-1]
    np.testing.assert_allclose(pb["gate.beta1"] * scale, a.params_["gate.beta1"],
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pb["expert.a"] * scale, a.params_["expert.a"], rtol=1e-5)
    np.testing.assert_allclose(pb["expert.b"] + shift * pb["expert.a"][:, 0],
                               a.params_["expert.b"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pb["noise.var"], a.params_["noise.var"], rtol=1e-5)
    np.testing.assert_allclose(b.predict(scale * X + shift), a.predict(X), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(proba, a.predict_proba(X), atol=1e-7)


def _matched(p: dict, ref: dict) -> dict:
    """`p` (two experts) with its experts in `ref`'s order, told apart by the signs of their
    slopes (2 and -1 in `_data`; a positive rescaling of x keeps them): if swapped, the
    experts and noise are reversed and the gate's free row (the last is the gauge, 0)
    negated — the same model. Unchanged otherwise (the same object)."""
    if np.array_equal(np.sign(p["expert.a"]), np.sign(ref["expert.a"])):
        return p
    out = {k: np.asarray(v)[::-1] for k, v in p.items()}
    for k in ("gate.beta1", "gate.beta0"):
        out[k] = np.asarray(p[k]) - np.asarray(p[k])[0]
        out[k] = out[k][::-1]
    return out


@pytest.mark.parametrize("scale,flagged", [(1e6, True), (1e-3, True), (30.0, False)])
def test_a_feature_kept_far_from_unit_scale_is_named(scale, flagged):
    """A quadratic gate keeps x on the user's scale: a standard deviation outside [1e-2, 1e2]
    is named (the box |beta| <= 50 and the solvers assume unit scale), one inside is not; a
    model that standardises x never names it."""
    X, y = _data()
    quadratic = MixtureOfExperts.create("quadratic_softmax", "linear", "gaussian", n_experts=2,
                                        n_features=1)
    s = scaling_for(quadratic, scale * X, y, np.ones(len(y)))
    assert [j for j, _ in s.off_scale] == ([0] if flagged else [])
    if flagged:
        (text,) = s.warnings(["income"], "y")
        assert text.startswith("'income' keeps its scale (standard deviation") and "rescale" in text
    softmax = MixtureOfExperts.create("softmax", "linear", "gaussian", n_experts=2, n_features=1)
    assert scaling_for(softmax, scale * X, y, np.ones(len(y))).off_scale == ()


def test_the_estimator_warns_about_a_feature_it_cannot_standardise():
    X, y = _data(n=200)
    with pytest.warns(DataScaleWarning, match="'x0' keeps its scale"):
        MixtureOfExpertsRegressor(n_experts=2, gate="quadratic_softmax", n_init=2,
                                  random_state=0).fit(1e6 * X, y)
