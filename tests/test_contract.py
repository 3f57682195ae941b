"""Contract test over registered gate x expert x noise combinations.

For each combination: sample n = 50 000 points from a known truth (tests/contract.py), fit from
near the truth (scale 0.1) with EM (mixture models) or least squares (regression models), and
check that
  * the fit converged and no parameter sits on a bound;
  * EM's log-likelihood never decreases: each step >= -1e-9 * max(|ll|, 1);
  * every free parameter (unconstrained coordinates: log variance, etc.) is within 6
    asymptotic standard errors of the truth (plus 1e-3 for round-off in near-exact cases).

The standard errors come from the inverse Fisher information estimated at the truth on the
same data: the outer product of per-sample score vectors for mixture models (valid for the
non-smooth Laplace and ReLU cases too), and sigma^2 (J^T J)^-1 for least squares. Under
asymptotic normality a 6-SE deviation has probability ~2e-9 per parameter, so a failure means a
real estimation problem, not bad luck; and the estimates must be that close, so the test has
power (a wrong M-step or gradient moves estimates by many SEs at this n).

Scale-invariant gates (the temperature gate: scaling (beta1, beta0, tau) together keeps the
weights) are compared in the gauge tau = tau* (fitted gate parameters multiplied by
tau*/tau_hat), tau excluded.
The default run covers every gate, expert and noise (contract.covering_combinations); the full
Cartesian product is marked slow.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import contract
from moestat import registry
from moestat.fit import FitOptions, fit, near_truth
from moestat.gates import Gate

N = 50_000
N_SE = 6.0
MAX_ITER = 5000


def labels(model, free):
    out = []
    for part, p in zip(("gate", "expert", "noise"), free, strict=True):
        for f, v in p._asdict().items():
            out += [f"{part}.{f}"] * int(np.size(v))
    return np.asarray(out)


def standard_errors(model, truth, X, y):
    """Asymptotic SEs of the free (unconstrained) parameters at the truth."""
    free = model.to_free(truth)
    vec, unravel = ravel_pytree(free)
    if model.kind != "regression":  # mixture and classification: per-sample scores
        def logp(v, x, t):
            return model.log_prob(model.from_free(unravel(v)), x[None], t[None])[0]

        scores = jax.vmap(jax.grad(logp), in_axes=(None, 0, 0))(vec, X, y)
        info = scores.T @ scores
        keep = np.ones(len(vec), bool)
    else:  # least squares: gate and expert parameters only
        def mean(v):
            return model.mean(model.from_free(unravel(v)), X)

        J = jax.jacfwd(mean)(vec)
        info = J.T @ J / truth.noise.var
        keep = ~np.char.startswith(labels(model, free), "noise.")
    if model.gate.scale_invariant:
        keep &= labels(model, free) != "gate.tau"
    idx = np.flatnonzero(keep)
    cov = np.linalg.inv(np.asarray(info)[np.ix_(idx, idx)])
    return idx, np.sqrt(np.diag(cov))


def in_truth_gauge(model, fitted, truth):
    if not model.gate.scale_invariant:
        return fitted
    return fitted._replace(gate=model.gate.to_scale(fitted.gate, truth.gate))


def check_combination(gate, expert, noise, seed=0):
    model, truth, estimator = contract.build(gate, expert, noise)
    X, y = contract.sample(model, truth, N, seed)
    start = near_truth(model, truth, jax.random.PRNGKey(seed + 1), 0.1)
    # label mixtures under a weak gate converge slowly (up to ~1700 EM iterations here)
    r = jax.device_get(fit(model, X, y, start, estimator=estimator,
                           options=FitOptions(max_iter=MAX_ITER)))
    name = f"{gate} x {expert} x {noise}"
    assert bool(r.converged), f"{name}: not converged after {int(r.n_iter)} iterations"
    assert not bool(r.at_bound), f"{name}: a parameter ended on its bound"
    if estimator == "em":
        h = np.concatenate([r.history[: int(r.n_iter)], [float(r.loglik)]])
        drops = np.diff(h) / np.maximum(np.abs(h[:-1]), 1.0)
        assert drops.min() >= -1e-9, f"{name}: EM log-likelihood decreased by {drops.min():.2e}"
    idx, se = standard_errors(model, truth, X, y)
    fitted = in_truth_gauge(model, r.params, truth)
    v_hat = np.asarray(ravel_pytree(model.to_free(fitted))[0])[idx]
    v_true = np.asarray(ravel_pytree(model.to_free(truth))[0])[idx]
    z = np.abs(v_hat - v_true) / (se + 1e-3 / N_SE)
    names = labels(model, model.to_free(truth))[idx]
    worst = int(np.argmax(z))
    assert z.max() <= N_SE, (f"{name}: {names[worst]} off by {z[worst]:.1f} SE "
                             f"(estimate {v_hat[worst]:.4f}, truth {v_true[worst]:.4f})")
    if model.kind == "regression":  # shared variance: SE <= v sqrt(5/n) (Laplace kurtosis 6)
        v, vt = float(r.params.noise.var), float(truth.noise.var)
        assert abs(v - vt) <= N_SE * vt * np.sqrt(5.0 / N), f"{name}: variance {v} vs {vt}"
    return r


@pytest.mark.parametrize("gate,expert,noise", contract.covering_combinations())
def test_contract(gate, expert, noise):
    check_combination(gate, expert, noise)


SLOW = [c for c in contract.all_combinations() if c not in contract.covering_combinations()]


@pytest.mark.slow
@pytest.mark.parametrize("gate,expert,noise", SLOW)
def test_contract_full_product(gate, expert, noise):
    check_combination(gate, expert, noise)


@pytest.mark.parametrize("cls", [*registry.GATES.values(), *registry.EXPERTS.values()],
                         ids=lambda c: c.name)
def test_every_registered_part_has_a_test_truth(cls):
    """The contract test fits what each class declares: a part without a test truth (or
    whose truth names other fields than its parameters) fails here."""
    assert cls.test_truths, f"{cls.name} declares no test_truths"
    for spec, truth in cls.test_truths.items():
        part = registry.make_gate(spec) if issubclass(cls, Gate) else registry.make_expert(spec)
        assert type(part) is cls and set(truth) == set(part.Params._fields), spec
    assert all(c in contract.covered_parts() for c in (cls.name,))


def test_em_monotone_check_has_power():
    """The monotonicity assertion fails on a history that decreases (guards the guard)."""
    h = np.array([-1.0, -0.9, -0.95])
    assert (np.diff(h) / np.maximum(np.abs(h[:-1]), 1.0)).min() < -1e-9


def test_tolerance_detects_a_wrong_estimate():
    """A fit deliberately off by 20 SE fails the z check (the test has power)."""
    model, truth, _ = contract.build("softmax", "linear", "gaussian")
    X, y = contract.sample(model, truth, N, 0)
    idx, se = standard_errors(model, truth, X, y)
    assert np.all(se < 0.05)  # parameters are pinned down to a few hundredths at this n
    bad = truth._replace(expert=truth.expert._replace(b=truth.expert.b + 20 * se.max()))
    v_hat = np.asarray(ravel_pytree(model.to_free(bad))[0])[idx]
    v_true = np.asarray(ravel_pytree(model.to_free(truth))[0])[idx]
    assert (np.abs(v_hat - v_true) / se).max() > N_SE
    assert jnp.isfinite(se).all()
