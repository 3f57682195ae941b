"""scikit-learn style estimator over the functional core (the only stateful object).

`params_` names (one entry per parameter field; k experts, d features, K = k (+1 frozen)):

  gate softmax / topk_softmax / sigmoid     gate.beta1 (K, d), gate.beta0 (K,)
  gate temperature / activation gates       + gate.tau ()
  gate quadratic_softmax / _sigmoid         + gate.A (K, d, d) (symmetric)
  expert linear / ridge:ACT                 expert.a (k, d), expert.b (k,)
  expert polynomial:P                       expert.coef (k, m) (monomial order: see
                                            PolynomialExpert.monomials)
  expert ridge_nobias:ACT                   expert.eta (k, d)
  expert constant                           expert.b (k,)
  noise gaussian / laplace                  noise.var (k,) mixture, () regression (variance)

The softmax family reports the gauge last row = 0.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from moestat.errors import InputError
from moestat.fit import (
    REASONS,
    DegenerateFitWarning,
    FitOptions,
    check_estimator_for,
    fit_random,
)
from moestat.model import MixtureOfExperts
from moestat.padding import bucket_size, pad_rows
from moestat.registry import ESTIMATORS


def underdetermined_message(n: int, p: int, model) -> str:
    return f"fewer rows than parameters: {n} samples for {p} free parameters ({model.describe()})"


class MixtureOfExpertsRegressor(RegressorMixin, BaseEstimator):
    """Mixture of experts fitted by EM, direct MLE or least squares.

    Parameters
    ----------
    n_experts : int, number of (trainable) experts k >= 1.
    gate, expert, noise : part specs, e.g. "softmax", "ridge:tanh", "gaussian".
    estimator : "em" | "mle" | "lse" ("lse" fits a regression MoE y = f(x) + eps).
    kind : "auto" | "mixture" | "regression"; auto = regression for "lse" or sigmoid gates.
    n_init : random (data-driven) restarts; the best objective is kept.
    max_iter, tol : stopping rule (relative change of the per-sample objective).
    random_state : seed for the restarts.

    After `fit`: params_ (named parameters), loglik_, objective_, converged_, n_iter_,
    at_bound_, degenerate_ (list of reasons among "floored", "empty", "separated"; empty when
    the fit is regular — a non-empty list also issues a DegenerateFitWarning), underdetermined_
    (fewer rows than free parameters: fitted, with a DegenerateFitWarning, since small
    cross-validation folds are legitimate; `moestat fit` refuses such a table instead).
    """

    def __init__(self, n_experts=3, gate="softmax", expert="linear", noise="gaussian",
                 estimator="em", n_init=5, max_iter=500, tol=1e-8, random_state=None,
                 kind="auto"):
        self.n_experts = n_experts
        self.gate = gate
        self.expert = expert
        self.noise = noise
        self.estimator = estimator
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.kind = kind

    # ---- validation -----------------------------------------------------------------------
    def _build_model(self, n_features: int) -> MixtureOfExperts:
        for name in ("n_experts", "n_init", "max_iter"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
                raise InputError(f"{name} must be an integer >= 1, got {v!r}")
        if not isinstance(self.tol, int | float) or not self.tol > 0:
            raise InputError(f"tol must be a number > 0, got {self.tol!r}")
        if self.estimator not in ESTIMATORS:
            raise InputError(f"unknown estimator {self.estimator!r}; expected one of "
                             f"{', '.join(ESTIMATORS)}")
        kind = self.kind
        if kind == "auto":
            from moestat.registry import make_gate

            gate = make_gate(self.gate)
            kind = "regression" if (self.estimator == "lse" or not gate.normalized) else "mixture"
        model = MixtureOfExperts.create(self.gate, self.expert, self.noise,
                                        n_experts=int(self.n_experts), n_features=n_features,
                                        kind=kind)
        check_estimator_for(model, self.estimator)
        return model

    def model_for(self, n_features: int) -> MixtureOfExperts:
        """The model this estimator fits to `n_features` features (parameters checked)."""
        return self._build_model(n_features)

    def _options(self) -> FitOptions:
        return FitOptions(max_iter=int(self.max_iter), tol=float(self.tol))

    # ---- fitting ----------------------------------------------------------------------------
    def fit(self, X, y, sample_weight=None):
        """Fit to X (n_samples, n_features), y (n_samples,). Returns self."""
        X, y = validate_data(self, X, y, y_numeric=True, dtype=np.float64)
        n, d = X.shape
        if n < 2:
            raise InputError(f"got {n} sample; at least 2 rows are needed")
        model = self._build_model(d)
        p = model.n_free_parameters()
        underdetermined = n < p
        if underdetermined:  # fitted anyway (cross-validation folds may be small)
            warnings.warn(underdetermined_message(n, p, model) + ": the estimate is one of "
                          "many equally good ones", DegenerateFitWarning, stacklevel=2)
        if sample_weight is None:
            w = np.ones(n)
        else:
            w = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
            if w.shape != (n,) or not np.all(np.isfinite(w)) or np.any(w < 0):
                raise InputError(f"sample_weight must hold {n} finite values >= 0")
            if w.sum() <= 0:
                raise InputError("sample_weight must not be all zero")
        if not (np.all(np.abs(X) < 1e150) and np.all(np.abs(y) < 1e150)):  # squares overflow
            raise InputError("values too large (|value| >= 1e150): rescale the data")
        Xp, yp, wp = pad_rows(X, y, w, bucket_size(n))
        seed = check_random_state(self.random_state).randint(2**31 - 1)
        result, objectives = fit_random(model, Xp, yp, jax.random.PRNGKey(seed),
                                        int(self.n_init), estimator=self.estimator,
                                        weights=wp, options=self._options())
        result = jax.device_get(result)
        if not np.isfinite(result.objective):
            raise InputError("every restart ended with a non-finite objective; check the data")
        self.model_ = model
        self.result_ = result
        self.params_ = model.named(result.params)
        self.converged_ = bool(result.converged)
        self.n_iter_ = int(result.n_iter)
        self.loglik_ = float(result.loglik) * float(w.sum())
        self.objective_ = float(result.objective)
        self.restart_objectives_ = np.asarray(objectives)
        self.at_bound_ = bool(result.at_bound)
        self.degenerate_ = [r for r in ("floored", "empty", "separated")
                            if bool(getattr(result, r))]  # fit/degeneracy.py
        self.n_parameters_ = p
        self.underdetermined_ = underdetermined
        if not self.converged_:
            warnings.warn(f"best of {self.n_init} restarts did not converge in {self.max_iter} "
                          f"iterations (tol={self.tol})", ConvergenceWarning, stacklevel=2)
        if self.degenerate_:
            warnings.warn("degenerate fit: " + ", ".join(REASONS[r] for r in self.degenerate_),
                          DegenerateFitWarning, stacklevel=2)
        return self

    # ---- prediction ---------------------------------------------------------------------------
    def _X(self, X):
        check_is_fitted(self, "params_")
        return jnp.asarray(validate_data(self, X, reset=False, dtype=np.float64))

    def predict(self, X):
        """E[y | x], shape (n_samples,)."""
        X = self._X(X)
        return np.asarray(self.model_.mean(self.result_.params, X))

    def predict_proba(self, X):
        """Gate weights w_i(x), shape (n_samples, n_components)."""
        X = self._X(X)
        return np.asarray(self.model_.gate_weights(self.result_.params, X))

    def predict_experts(self, X):
        """Expert means h_i(x), shape (n_samples, n_components)."""
        X = self._X(X)
        return np.asarray(self.model_.expert_means(self.result_.params, X))

    def loglik_samples(self, X, y):
        """log p(y | x) per sample, shape (n_samples,)."""
        X = self._X(X)
        y = jnp.asarray(np.asarray(y, dtype=np.float64).reshape(-1))
        return np.asarray(self.model_.log_prob(self.result_.params, X, y))

    def score(self, X, y, sample_weight=None):
        """Mean log-likelihood (mixture models) or minus the mean squared error (regression)."""
        X = self._X(X)
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        if self.model_.kind == "regression":
            per = -(y - np.asarray(self.model_.mean(self.result_.params, X))) ** 2
        else:
            per = np.asarray(self.model_.log_prob(self.result_.params, X, jnp.asarray(y)))
        return float(np.average(per, weights=sample_weight))

    def sample(self, X, random_state=None):
        """Draw y | x for every row of X, shape (n_samples,)."""
        seed = check_random_state(random_state).randint(2**31 - 1)
        X = self._X(X)
        return np.asarray(self.model_.sample(jax.random.PRNGKey(seed), self.result_.params, X))

    def bic(self, X, y):
        """-2 log L + P log n (P free parameters)."""
        n = np.shape(X)[0]
        return -2 * float(np.sum(self.loglik_samples(X, y))) + self.n_parameters_ * np.log(n)

    def aic(self, X, y):
        """-2 log L + 2 P."""
        return -2 * float(np.sum(self.loglik_samples(X, y))) + 2 * self.n_parameters_

    def summary(self, X, y) -> dict:
        """The fitted model as plain data (what `moestat fit --json` prints): model, estimator,
        parameters, log-likelihood, BIC, AIC, parameter count, convergence and flags."""
        check_is_fitted(self, "params_")
        return {
            "n_samples": int(np.shape(X)[0]), "model": self.model_.describe(),
            "estimator": self.estimator,
            "parameters": {k: np.asarray(v).tolist() for k, v in self.params_.items()},
            "loglik": self.loglik_, "bic": self.bic(X, y), "aic": self.aic(X, y),
            "n_parameters": self.n_parameters_, "converged": self.converged_,
            "n_iter": self.n_iter_, "at_bound": self.at_bound_, "degenerate": self.degenerate_,
            "n_init": self.n_init,
        }

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # score() is a log-likelihood, not R^2: sklearn's "score > 0.5" check does not apply
        tags.regressor_tags.poor_score = True
        return tags
