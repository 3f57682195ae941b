"""Classification MoE: multinomial-logistic experts under a gate, the categorical likelihood
(arXiv 2310.14188): its law, its refusals, and EM's data-driven starts."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from moestat import InputError, MixtureOfExperts
from moestat.fit import FitOptions, fit, fit_random, near_truth

MODEL = MixtureOfExperts.create("softmax", "multinomial:3", "categorical", n_experts=2,
                                n_features=1, kind="classification")
TRUTH = MODEL.from_named({"gate.beta1": [[3.0], [0.0]], "gate.beta0": [0.5, 0.0],
                          "expert.eta": [[[3.0], [-2.0]], [[-2.0], [2.5]]],
                          "expert.tau": [[0.5, -0.5], [0.0, 1.0]]})


def data(n, seed):
    X = jax.random.normal(jax.random.PRNGKey(seed), (n, 1))
    return X, MODEL.sample(jax.random.PRNGKey(seed + 1), TRUTH, X)


def test_class_probabilities_are_the_gated_mixture_of_softmaxes():
    """P(y = l | x) against the formula in NumPy, and the sampler's label frequencies against
    it: 200 000 draws give each class frequency within 4 binomial s.e. (~0.004)."""
    X, y = data(200_000, 0)
    x = np.asarray(X[:, 0])
    g = np.stack([3 * x + 0.5, np.zeros_like(x)], axis=1)
    w = np.exp(g - g.max(axis=1, keepdims=True))
    w /= w.sum(axis=1, keepdims=True)
    z = np.stack([np.stack([3 * x + 0.5, -2 * x - 0.5, 0 * x], 1),
                  np.stack([-2 * x, 2.5 * x + 1.0, 0 * x], 1)], axis=1)  # (n, k, R)
    p = np.exp(z - z.max(axis=2, keepdims=True))
    p /= p.sum(axis=2, keepdims=True)
    expect = np.einsum("nk,nkr->nr", w, p)
    got = np.exp(np.asarray(MODEL.class_log_probs(TRUTH, X)))
    np.testing.assert_allclose(got, expect, rtol=1e-10)
    freq = np.bincount(np.asarray(y).astype(int), minlength=3) / y.shape[0]
    se = np.sqrt(expect.mean(0) * (1 - expect.mean(0)) / y.shape[0])
    assert np.all(np.abs(freq - expect.mean(0)) < 4 * se)
    np.testing.assert_allclose(np.asarray(MODEL.log_prob(TRUTH, X[:50], y[:50])),
                               np.log(expect[np.arange(50), np.asarray(y[:50]).astype(int)]),
                               rtol=1e-10)


@pytest.mark.parametrize("expert,noise,kind", [("multinomial:3", "gaussian", "classification"),
                                               ("linear", "categorical", "classification"),
                                               ("multinomial:3", "categorical", "mixture")])
def test_label_experts_pair_with_the_categorical_likelihood_only(expert, noise, kind):
    with pytest.raises(InputError, match="classification models pair a categorical expert"):
        MixtureOfExperts.create("softmax", expert, noise, n_experts=2, n_features=1,
                                kind=kind)


@pytest.mark.slow
def test_random_starts_reach_the_near_truth_optimum():
    """EM from the data-driven starts (the users' estimator) reaches the log-likelihood of EM
    from next to the truth, on the same 3 000 labels (SQUAREM: plain EM creeps here)."""
    X, y = data(3000, 3)
    options = FitOptions(max_iter=2000, accelerate="squarem")
    near = fit(MODEL, X, y, near_truth(MODEL, TRUTH, jax.random.PRNGKey(0), 0.1),
               options=options)
    best, _ = fit_random(MODEL, X, y, jax.random.PRNGKey(1), n_init=3, options=options)
    assert bool(near.converged) and bool(best.converged)
    assert float(best.loglik) >= float(near.loglik) - 1e-6
    assert not bool(best.separated)


def test_newton_reaches_at_least_the_em_optimum_on_labels():
    """Direct MLE by Newton steps and SQUAREM EM from the same near-truth start on the same
    3 000 labels: Newton ends at a log-likelihood no lower (EM stops on a relative change of
    1e-8 while still climbing), in under 60 iterations."""
    X, y = data(3000, 3)
    start = near_truth(MODEL, TRUTH, jax.random.PRNGKey(0), 0.1)
    em = fit(MODEL, X, y, start, options=FitOptions(max_iter=2000, accelerate="squarem"))
    newton = fit(MODEL, X, y, start, estimator="newton", options=FitOptions(max_iter=2000))
    assert bool(newton.converged) and int(newton.n_iter) < 60
    assert float(newton.loglik) >= float(em.loglik) - 1e-9


# d = 30 features on 27 rows with three classes: 62 free parameters, the optimum is a set and
# the weighted and the repeated-row fits end at different members of it (as for the
# regressor, tests/test_estimator.py); weights as frequencies on identifiable data below
CLASSIFIER_NOT_APPLICABLE = {
    "check_sample_weight_equivalence_on_dense_data": "27 rows < free parameters: no unique fit",
}


@pytest.mark.slow
def test_sklearn_check_estimator():
    """check_estimator(MixtureOfExpertsClassifier()) with one expert (a multinomial logistic
    regression fitted by the MoE machinery) and fewer restarts, which no check depends on."""
    from sklearn.utils.estimator_checks import check_estimator

    from moestat import MixtureOfExpertsClassifier

    est = MixtureOfExpertsClassifier(n_experts=1, n_init=2, max_iter=100, random_state=0)
    results = check_estimator(est, on_fail=None,
                              expected_failed_checks=CLASSIFIER_NOT_APPLICABLE)
    failed = [(r["check_name"], str(r["exception"])[:200]) for r in results
              if r["status"] == "failed"]
    assert not failed, failed
    assert set(CLASSIFIER_NOT_APPLICABLE) <= {r["check_name"] for r in results}


def test_classifier_weights_are_frequencies_and_labels_round_trip():
    """Integer weights fit like repeated rows (identifiable data: 2 experts, 600 rows), and
    string labels come back as themselves; score is the mean log-likelihood."""
    from moestat import MixtureOfExpertsClassifier

    X, y = data(600, 7)
    names = np.array(["a", "b", "c"])[np.asarray(y).astype(int)]
    X = np.asarray(X)
    w = np.random.default_rng(0).integers(0, 3, len(names))
    est = dict(n_experts=2, n_init=3, max_iter=2000, tol=1e-12, random_state=0)
    weighted = MixtureOfExpertsClassifier(**est).fit(X, names, sample_weight=w)
    repeated = MixtureOfExpertsClassifier(**est).fit(np.repeat(X, w, axis=0),
                                                     np.repeat(names, w))
    assert list(weighted.classes_) == ["a", "b", "c"]
    np.testing.assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X),
                               atol=1e-5)
    assert set(weighted.predict(X)) <= {"a", "b", "c"}
    assert weighted.score(X, names) == pytest.approx(
        np.mean(np.log(weighted.predict_proba(X)[np.arange(600), np.asarray(y).astype(int)])),
        rel=1e-9)
    with pytest.raises(InputError, match="labels not seen"):
        weighted.score(X[:2], ["a", "z"])


def test_cli_fits_a_label_column(tmp_path):
    """`moestat fit --kind classification` reads text labels, names the classes in the
    experts' order, and its reported parameters (on the user's scale) give back its reported
    log-likelihood; an expert or noise given with it is refused in one line (exit 2)."""
    import json
    import subprocess
    import sys

    X, y = data(400, 11)
    names = np.array(["low", "mid", "high"])[np.asarray(y).astype(int)]
    path = tmp_path / "labels.csv"
    path.write_text("x,grade\n" + "".join(
        f"{x:.17g},{c}\n" for x, c in zip(np.asarray(X)[:, 0] * 10 + 3, names, strict=True)))
    run = [sys.executable, "-m", "moestat", "fit", str(path), "--target", "grade", "--kind",
           "classification", "--experts", "2", "--n-init", "3", "--json"]
    r = subprocess.run(run, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["classes"] == ["high", "low", "mid"]
    fitted = MODEL.from_named({k: np.asarray(v) for k, v in out["parameters"].items()})
    codes = np.searchsorted(out["classes"], names).astype(float)
    loglik = MODEL.log_prob(fitted, np.asarray(X) * 10 + 3, codes).sum()
    assert out["loglik"] == pytest.approx(float(loglik), rel=1e-9)
    r = subprocess.run(run + ["--noise", "laplace"], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 2 and "drop --expert and --noise" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = subprocess.run([a for a in run if a not in ("--kind", "classification")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "(class labels: --kind classification)" in r.stderr
