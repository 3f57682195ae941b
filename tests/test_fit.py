"""Estimator mechanics: vmapped replicates, MLE vs EM, weights/padding, bounds flags."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from moestat import MixtureOfExperts
from moestat.fit import FitOptions, fit, fit_batch, near_truth
from moestat.fit.api import default_bounds

MODEL = MixtureOfExperts.create("softmax", "linear", "gaussian", n_experts=2, n_features=1)
TRUTH = MODEL.from_named({"gate.beta1": [[4.0], [0.0]], "gate.beta0": [0.5, 0.0],
                          "expert.a": [[2.0], [-1.0]], "expert.b": [1.0, -0.5],
                          "noise.var": [0.05, 0.08]})


def data(n, seed):
    kx, ky = jax.random.split(jax.random.PRNGKey(seed))
    X = jax.random.normal(kx, (n, 1))
    return X, MODEL.sample(ky, TRUTH, X)


def test_fit_batch_equals_individual_fits():
    R, n = 4, 3000
    Xs, ys, starts = [], [], []
    for r in range(R):
        X, y = data(n, r)
        Xs.append(X)
        ys.append(y)
        starts.append(near_truth(MODEL, TRUTH, jax.random.PRNGKey(100 + r), 0.1))
    stack = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *starts)
    batch = fit_batch(MODEL, jnp.stack(Xs), jnp.stack(ys), stack)
    assert batch.loglik.shape == (R,) and batch.params.expert.a.shape == (R, 2, 1)
    for r in range(R):
        single = fit(MODEL, Xs[r], ys[r], starts[r])
        np.testing.assert_allclose(batch.loglik[r], single.loglik, rtol=1e-10)
        np.testing.assert_allclose(batch.params.expert.a[r], single.params.expert.a, rtol=1e-7,
                                   atol=1e-9)
        assert int(batch.n_iter[r]) == int(single.n_iter)


def em_and_mle_agree(model, X, y, start):
    """Fit by EM and by direct MLE from the same start; both converge and their per-sample
    log-likelihoods agree to 1e-7 (both stop at relative change 1e-8). Returns (em, mle)."""
    em = fit(model, X, y, start, estimator="em")
    mle = fit(model, X, y, start, estimator="mle")
    assert bool(em.converged) and bool(mle.converged)
    assert abs(float(em.loglik) - float(mle.loglik)) < 1e-7
    return em, mle


def test_mle_and_em_reach_the_same_maximum():
    X, y = data(20_000, 0)
    start = near_truth(MODEL, TRUTH, jax.random.PRNGKey(1), 0.1)
    em, mle = em_and_mle_agree(MODEL, X, y, start)
    np.testing.assert_allclose(em.params.expert.a, mle.params.expert.a, atol=1e-3)


def test_newton_reaches_the_em_maximum_at_a_zero_gradient():
    """Direct MLE by Newton steps from the EM test's start: the same maximum (per-sample
    log-likelihood within 1e-7 of EM's, which stops at relative change 1e-8) and a stationary
    point (gradient in free coordinates below 1e-8) in under 40 iterations."""
    from jax.flatten_util import ravel_pytree

    from moestat.fit.mle import mean_loglik

    X, y = data(20_000, 0)
    start = near_truth(MODEL, TRUTH, jax.random.PRNGKey(1), 0.1)
    em = fit(MODEL, X, y, start, estimator="em")
    newton = fit(MODEL, X, y, start, estimator="newton")
    assert bool(newton.converged) and bool(em.converged)
    assert float(newton.loglik) >= float(em.loglik) - 1e-7
    u, unravel = ravel_pytree(MODEL.to_free(newton.params))
    grad = jax.grad(lambda v: mean_loglik(MODEL, MODEL.from_free(unravel(v)), X, y,
                                          jnp.ones(len(y))))(u)
    assert float(jnp.max(jnp.abs(grad))) < 1e-8
    assert int(newton.n_iter) < 40
    np.testing.assert_allclose(newton.params.expert.a, em.params.expert.a, atol=1e-3)


def test_a_newton_step_reports_whether_it_found_an_increase():
    """On a concave quadratic one step lands on the maximum (ok); on -|u - 0.3| from 0 the
    Hessian is 0, every halving of the step still overshoots into the box edge, no point
    increases the objective, so the step is refused (parameters kept) and reported not ok,
    with a predicted gain far above any tolerance: the `newton` estimator turns that into
    converged False. The quadratic's predicted gain g . delta / 2 is its true gain, 0.09."""
    from moestat.fit.steps import newton_ascent

    def ident(p):
        return p

    box = (jnp.asarray(-10.0), jnp.asarray(10.0))
    top, ok, q0, gain = newton_ascent(lambda u: -(u - 0.3) ** 2, jnp.asarray(0.0), ident,
                                      ident, box, 1, 1e-10)
    assert bool(ok) and abs(float(top) - 0.3) < 1e-12
    assert float(q0) == pytest.approx(-0.09) and float(gain) == pytest.approx(0.09)
    kept, ok, _, gain = newton_ascent(lambda u: -jnp.abs(u - 0.3), jnp.asarray(0.0), ident,
                                      ident, box, 1, 1e-10)
    assert not bool(ok) and float(kept) == 0.0 and float(gain) > 1e-3


def test_newton_refuses_a_model_with_too_many_parameters():
    import pytest

    from moestat.errors import InputError

    wide = MixtureOfExperts.create("softmax", "linear", "gaussian", n_experts=4, n_features=20)
    X = jnp.zeros((10, 20))
    with pytest.raises(InputError, match="at most 64 free parameters; this model has"):
        fit(wide, X, jnp.zeros(10), wide.zeros(), estimator="newton")


def test_zero_weight_rows_change_nothing():
    X, y = data(2000, 3)
    start = near_truth(MODEL, TRUTH, jax.random.PRNGKey(4), 0.1)
    plain = fit(MODEL, X, y, start)
    Xp = jnp.concatenate([X, X[:500] + 3.0])  # junk rows with weight 0
    yp = jnp.concatenate([y, y[:500] * 10.0])
    w = jnp.concatenate([jnp.ones(2000), jnp.zeros(500)])
    padded = fit(MODEL, Xp, yp, start, weights=w, bounds=default_bounds(MODEL, y, jnp.ones(2000)))
    np.testing.assert_allclose(padded.loglik, plain.loglik, rtol=1e-12)
    np.testing.assert_allclose(padded.params.gate.beta1, plain.params.gate.beta1, rtol=1e-9)


def test_bounds_are_kept_and_flagged():
    X, y = data(5000, 5)
    start = near_truth(MODEL, TRUTH, jax.random.PRNGKey(6), 0.1)
    lo, hi = default_bounds(MODEL, y, jnp.ones(5000))
    # the true gate slope is 4: a box |beta| <= 2 must hold it at the bound
    lo = lo._replace(gate=lo.gate._replace(beta1=jnp.full((2, 1), -2.0)))
    hi = hi._replace(gate=hi.gate._replace(beta1=jnp.full((2, 1), 2.0)))
    r = fit(MODEL, X, y, start, bounds=(lo, hi))
    assert bool(r.at_bound) and float(jnp.max(jnp.abs(r.params.gate.beta1))) <= 2.0 + 1e-12
    free = fit(MODEL, X, y, start)
    assert not bool(free.at_bound) and not bool(free.floored)
    # a variance floor above the true variances is attained and flagged
    lo2 = lo._replace(gate=default_bounds(MODEL, y, jnp.ones(5000))[0].gate,
                      noise=lo.noise._replace(var=jnp.full(2, 0.2)))
    hi2 = hi._replace(gate=default_bounds(MODEL, y, jnp.ones(5000))[1].gate)
    r2 = fit(MODEL, X, y, start, bounds=(lo2, hi2))
    assert bool(r2.floored) and bool(r2.at_bound)
    assert float(jnp.min(r2.params.noise.var)) >= 0.2 - 1e-12
    h = np.asarray(r2.history)[: int(r2.n_iter)]
    assert np.all(np.diff(h) >= -1e-9 * np.abs(h[:-1]))  # still monotone under the box


REG = MixtureOfExperts.create("softmax", "ridge:sigmoid", "gaussian", n_experts=2,
                              n_features=1, kind="regression")
REG_TRUTH = REG.from_named({"gate.beta1": [[8.0], [0.0]], "gate.beta0": [-4.0, 0.0],
                            "expert.a": [[6.0], [-6.0]], "expert.b": [-4.5, 1.5],
                            "noise.var": 1e-4})


def test_least_squares_stops_on_the_relative_mse_change():
    """With noise sd 0.01 the MSE is ~1e-4: the default tol (1e-8) must be relative to it, so
    an over-specified fit (slow, flat directions) ends where a much tighter run ends; the old
    test, absolute 1e-8 (= 1e-4 relative), stopped short of it."""
    kx, ky = jax.random.split(jax.random.PRNGKey(11))
    X = jax.random.uniform(kx, (4000, 1))
    y = REG.sample(ky, REG_TRUTH, X)
    over = dataclasses.replace(REG, n_experts=3)
    start = near_truth(over, REG_TRUTH, jax.random.PRNGKey(12), 0.1, (0, 0, 1))
    default = fit(over, X, y, start, estimator="lse",
                  options=FitOptions(max_iter=5000, expert_bound=20.0))
    tight = fit(over, X, y, start, estimator="lse",
                options=FitOptions(max_iter=5000, tol=1e-15, expert_bound=20.0))
    mse_default, mse_tight = -float(default.objective), -float(tight.objective)
    assert mse_tight < 2e-4 and bool(default.converged)
    # the Gaussian log-likelihood gap n/2 log(mse ratio), in nats: the relative rule stops
    # 0.06 nats short, the old absolute one 0.35; 0.1 is well below sampling noise (~0.5)
    assert 4000 / 2 * np.log(mse_default / mse_tight) < 0.1


def test_expert_bound_boxes_every_expert_coefficient():
    kx, ky = jax.random.split(jax.random.PRNGKey(13))
    X = jax.random.uniform(kx, (2000, 1))
    y = REG.sample(ky, REG_TRUTH, X)
    start = near_truth(REG, REG_TRUTH, jax.random.PRNGKey(14), 0.1)
    r = fit(REG, X, y, start, estimator="lse", options=FitOptions(expert_bound=5.0))
    coef = np.concatenate([np.ravel(r.params.expert.a), np.ravel(r.params.expert.b)])
    assert np.max(np.abs(coef)) <= 5.0 + 1e-12 and bool(r.at_bound)  # |a*| = 6 is outside
    free = fit(REG, X, y, start, estimator="lse")
    assert np.max(np.abs(np.ravel(free.params.expert.a))) > 5.5


def test_autodiff_newton_step_maximises_and_never_descends():
    """A concave quadratic in (a, log t) is maximised in one step; on a non-concave objective
    (negative curvature at the start) the saddle-free step still increases it."""
    from collections import namedtuple

    from moestat.fit.steps import autodiff_newton_maximize

    P = namedtuple("P", "a t")
    to_free = lambda p: P(p.a, jnp.log(p.t))  # noqa: E731
    from_free = lambda u: P(u.a, jnp.exp(u.t))  # noqa: E731
    box = (P(jnp.full(2, -10.0), 1e-3), P(jnp.full(2, 10.0), 1e3))

    def concave(p):
        u = jnp.concatenate([p.a, jnp.log(p.t)[None]]) - jnp.array([1.0, -2.0, 0.5])
        return -u @ jnp.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 3.0]]) @ u

    start = P(jnp.array([4.0, 3.0]), 0.1)
    best = autodiff_newton_maximize(concave, start, to_free, from_free, box, 1, 1e-10)
    np.testing.assert_allclose(best.a, [1.0, -2.0], atol=1e-10)
    np.testing.assert_allclose(best.t, np.exp(0.5), rtol=1e-10)

    def wavy(p):  # -cos has negative curvature around 0 in a: plain Newton would descend
        return -jnp.sum(jnp.cos(p.a)) - (jnp.log(p.t) - 1.0) ** 2

    start = P(jnp.array([0.3, -0.2]), 1.0)
    moved = autodiff_newton_maximize(wavy, start, to_free, from_free, box, 3, 1e-10)
    assert float(wavy(moved)) > float(wavy(start)) + 0.1


ACT = MixtureOfExperts.create("activation_temperature_softmax:tanh", "linear", "gaussian",
                              n_experts=2, n_features=1)
ACT_TRUTH = ACT.from_named({"gate.beta1": [[3.0], [0.0]], "gate.beta0": [-1.0, 0.0],
                            "gate.tau": 0.5, "expert.a": [[-20.0], [20.0]],
                            "expert.b": [15.0, -5.0], "noise.var": [0.09, 0.16]})


def test_activation_gate_em_reaches_the_direct_mle():
    """EM's activation-gate M-step (autodiff Newton on Q_gate) ends where L-BFGS on the
    observed likelihood ends, and the EM history is monotone."""
    kx, ky = jax.random.split(jax.random.PRNGKey(21))
    X = jax.random.uniform(kx, (5000, 1))
    y = ACT.sample(ky, ACT_TRUTH, X)
    start = near_truth(ACT, ACT_TRUTH, jax.random.PRNGKey(22), 0.1)
    em, mle = em_and_mle_agree(ACT, X, y, start)
    np.testing.assert_allclose(em.params.gate.beta1, mle.params.gate.beta1, atol=1e-2)
    h = np.asarray(em.history)[: int(em.n_iter)]
    assert np.all(np.diff(h) >= -1e-12 * np.abs(h[:-1]))


def test_split_after_continues_only_the_slow_fits_and_changes_nothing():
    """Over-specified EM (k = 3 for k* = 2): replicates need very different iteration counts.
    Continuing the unconverged ones in a smaller batch after 240 iterations gives the same fits:
    EM's state is its parameters, so trajectories coincide; a fit that continues pays one extra
    iteration at most (no predecessor for its first objective after the split)."""
    over = dataclasses.replace(MODEL, n_experts=3)
    R, n = 5, 1500
    Xs, ys, starts = [], [], []
    for r in range(R):
        X, y = data(n, 40 + r)
        Xs.append(X)
        ys.append(y)
        starts.append(near_truth(over, TRUTH, jax.random.PRNGKey(60 + r), 0.1, (0, 0, 1)))
    stack = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *starts)
    opts, m = FitOptions(max_iter=800), 240
    whole = fit_batch(over, jnp.stack(Xs), jnp.stack(ys), stack, options=opts)
    split = fit_batch(over, jnp.stack(Xs), jnp.stack(ys), stack, options=opts, split_after=m)
    n_whole, n_split = np.asarray(whole.n_iter), np.asarray(split.n_iter)
    # the seeds give all three cases: done before the split, converging after it, max_iter
    assert np.any(n_whole <= m) and np.any((n_whole > m) & np.asarray(whole.converged))
    assert np.any(n_whole == 800)
    assert np.all((n_split == n_whole) | ((n_whole > m) & (n_split <= n_whole + 1)))
    np.testing.assert_allclose(split.loglik, whole.loglik, rtol=1e-9)
    np.testing.assert_allclose(split.params.expert.a, whole.params.expert.a, atol=1e-4)
    assert split.history.shape == whole.history.shape == (R, 800)
    for r in range(R):  # the joined history is the uninterrupted one
        k = int(min(n_whole[r], n_split[r]))
        np.testing.assert_allclose(split.history[r, :k], whole.history[r, :k], rtol=1e-10)
    assert np.array_equal(np.asarray(split.converged), np.asarray(whole.converged))


def test_lbfgs_least_squares_reaches_the_levenberg_marquardt_minimum():
    """The L-BFGS solver (used above LM_MAX_PARAMETERS free parameters) minimises the same sum
    of squares: on an exact fit both end at the same MSE (relative 1e-6: both stop at relative
    change 1e-10 near a well-conditioned minimum) and the same parameters."""
    kx, ky = jax.random.split(jax.random.PRNGKey(15))
    X = jax.random.uniform(kx, (2000, 1))
    y = REG.sample(ky, REG_TRUTH, X)
    start = near_truth(REG, REG_TRUTH, jax.random.PRNGKey(16), 0.1)
    lm = fit(REG, X, y, start, estimator="lse",
             options=FitOptions(tol=1e-10, max_iter=2000, lse_solver="lm"))
    bfgs = fit(REG, X, y, start, estimator="lse",
               options=FitOptions(tol=1e-10, max_iter=2000, lse_solver="lbfgs"))
    assert bool(lm.converged) and bool(bfgs.converged)
    np.testing.assert_allclose(float(bfgs.objective), float(lm.objective), rtol=1e-6)
    np.testing.assert_allclose(bfgs.params.expert.a, lm.params.expert.a, atol=1e-3)


def test_sgd_full_batch_epoch_is_one_projected_gradient_step():
    """batch_size = n: an epoch is one gradient step of the mean squared error in free
    coordinates, theta - lr grad (nothing of the box binds near the truth)."""
    from moestat.fit.sgd import sample_losses

    kx, ky = jax.random.split(jax.random.PRNGKey(17))
    X = jax.random.uniform(kx, (500, 1))
    y = REG.sample(ky, REG_TRUTH, X)
    start = near_truth(REG, REG_TRUTH, jax.random.PRNGKey(18), 0.1)
    r = fit(REG, X, y, start, estimator="sgd",
            options=FitOptions(max_iter=1, learning_rate=0.05, batch_size=500))
    free0 = REG.to_free(REG.canonicalize(start))
    g = jax.grad(lambda f: jnp.mean(sample_losses(REG, REG.from_free(f), X, y)))(free0)
    expect = REG.from_free(jax.tree_util.tree_map(lambda a, b: a - 0.05 * b, free0, g))
    np.testing.assert_allclose(r.params.expert.a, expect.expert.a, rtol=1e-10)
    np.testing.assert_allclose(r.params.gate.beta1[0], expect.gate.beta1[0], rtol=1e-10)
    assert int(r.n_iter) == 1 and not bool(r.converged)  # one epoch: no second objective


def test_sgd_descends_towards_the_least_squares_fit_and_ignores_padding():
    """Minibatch SGD (batch 32, lr 0.1) from near the truth: 20 epochs take the MSE from 29x
    the least-squares minimum to under 1.5x (1.38x measured: SGD at a fixed rate is slow on
    the gate's flat directions), 200 epochs further (1.16x); rows of weight 0 are never
    drawn: the padded run (the same real rows and 400 junk rows of weight 0) takes the same
    steps in the same order and ends where the unpadded one does (to rounding)."""
    kx, ky = jax.random.split(jax.random.PRNGKey(19))
    X = jax.random.uniform(kx, (2000, 1))
    y = REG.sample(ky, REG_TRUTH, X)
    start = near_truth(REG, REG_TRUTH, jax.random.PRNGKey(20), 0.1)
    best = -float(fit(REG, X, y, start, estimator="lse").objective)
    opts = FitOptions(max_iter=20, learning_rate=0.1, batch_size=32)
    r = fit(REG, X, y, start, estimator="sgd", options=opts)
    longer = fit(REG, X, y, start, estimator="sgd", options=FitOptions(max_iter=200))
    mse0 = float(jnp.mean((y - REG.mean(start, X)) ** 2))
    mse, mse_longer = -float(r.objective), -float(longer.objective)
    assert best < mse_longer < mse < 1.5 * best < mse0
    h = np.asarray(r.history)
    assert np.all(np.diff(h) > 0)  # every epoch improves the full objective here
    Xp = jnp.concatenate([X, X[:400]])
    yp = jnp.concatenate([y, y[:400] + 5.0])
    w = jnp.concatenate([jnp.ones(2000), jnp.zeros(400)])
    padded = fit(REG, Xp, yp, start, estimator="sgd", weights=w, options=opts,
                 bounds=default_bounds(REG, y, jnp.ones(2000)))
    np.testing.assert_allclose(float(padded.objective), float(r.objective), rtol=1e-10)
    np.testing.assert_allclose(padded.params.expert.a, r.params.expert.a, rtol=1e-9)
    np.testing.assert_allclose(padded.params.gate.beta1, r.params.gate.beta1, rtol=1e-9)
