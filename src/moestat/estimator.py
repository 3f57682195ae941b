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
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from moestat.dendrogram import check_dendrogram_model
from moestat.errors import InputError
from moestat.expert_selection import check_criterion, choose_experts
from moestat.fit import REASONS, DegenerateFitWarning, FitOptions
from moestat.model import MixtureOfExperts
from moestat.standardise import DataScaleWarning
from moestat.table_fit import build_model, fit_table, underdetermined_message


class TableEstimator(BaseEstimator):
    """What the regressor and the classifier share: restarts, the fit of one table
    (moestat/table_fit.py), its flags and warnings, standard errors, likelihood summaries.
    Subclasses build the model (`_build_model`) and validate X, y."""

    def _check_numbers(self) -> None:
        for name in ("n_init", "max_iter"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
                raise InputError(f"{name} must be an integer >= 1, got {v!r}")
        if not isinstance(self.tol, int | float) or not self.tol > 0:
            raise InputError(f"tol must be a number > 0, got {self.tol!r}")

    def model_for(self, n_features: int) -> MixtureOfExperts:
        """The model this estimator fits to `n_features` features (parameters checked)."""
        return self._build_model(n_features)

    def _options(self) -> FitOptions:
        return FitOptions(max_iter=int(self.max_iter), tol=float(self.tol), finish=self.finish)

    def _fit_table(self, X, y, sample_weight, target: str = "y"):
        """Fit the model to validated X (n, d), y (n,) and set the fitted attributes."""
        n, d = X.shape
        if n < 2:
            raise InputError(f"got {n} sample; at least 2 rows are needed")
        model = self._build_model(d)
        p = model.n_free_parameters()
        underdetermined = n < p
        if underdetermined:  # fitted anyway (cross-validation folds may be small)
            warnings.warn(underdetermined_message(n, p, model) + ": the estimate is one of "
                          "many equally good ones", DegenerateFitWarning, stacklevel=3)
        fitted = fit_table(model, X, y, sample_weight, estimator=self.estimator,
                           n_init=int(self.n_init), options=self._options(),
                           seed=check_random_state(self.random_state).randint(2**31 - 1),
                           standardise=self.standardise)
        result = fitted.result
        self.model_ = model
        self.result_ = result  # the best restart, on the standardised scale
        self.fitted_ = fitted
        self.params_ = model.named(fitted.params)
        self.converged_ = bool(result.converged)
        self.n_iter_ = int(result.n_iter)
        self.loglik_ = fitted.loglik
        self.objective_ = fitted.objective
        self.restart_objectives_ = fitted.restart_objectives
        self.n_reached_best_ = fitted.n_reached_best
        self.at_bound_ = bool(result.at_bound)
        self.degenerate_ = fitted.degenerate
        self.n_parameters_ = p
        self.underdetermined_ = underdetermined
        if not self.converged_:
            hint = ("; finish='newton' converges where EM crawls"
                    if (self.estimator, self.finish) == ("em", "none") else "")
            warnings.warn(f"best of {self.n_init} restarts did not converge in {self.max_iter} "
                          f"iterations (tol={self.tol}){hint}", ConvergenceWarning, stacklevel=3)
        if self.degenerate_:
            warnings.warn("degenerate fit: " + ", ".join(REASONS[r] for r in self.degenerate_),
                          DegenerateFitWarning, stacklevel=3)
        names = list(getattr(self, "feature_names_in_", [f"x{j}" for j in range(d)]))
        for text in fitted.scaling.warnings(names, target):
            warnings.warn(text, DataScaleWarning, stacklevel=3)
        return self

    @property
    def params_se_(self) -> dict:
        """Standard errors of params_ (same names and shapes) from the observed information,
        computed at the first request; NaN everywhere when the information is singular."""
        check_is_fitted(self, "params_")
        return self.fitted_.standard_errors

    def bootstrap_se(self, n_samples: int = 200, random_state=None) -> dict:
        """Standard errors of params_ by the parametric bootstrap: n_samples responses drawn
        from the fit at the training X, each refitted from the estimate (one batched
        program); also stored as params_bootstrap_se_ (and the refits used as
        n_bootstrap_used_)."""
        check_is_fitted(self, "params_")
        if int(n_samples) < 2:
            raise InputError(f"n_samples must be >= 2, got {n_samples}")
        seed = int(check_random_state(random_state).randint(0, 2**31 - 1))
        self.params_bootstrap_se_, self.n_bootstrap_used_ = \
            self.fitted_.bootstrap_standard_errors(int(n_samples), seed)
        return self.params_bootstrap_se_

    def _X(self, X):
        check_is_fitted(self, "params_")
        return jnp.asarray(validate_data(self, X, reset=False, dtype=np.float64))

    def loglik_samples(self, X, y):
        """log p(y | x) per sample, shape (n_samples,)."""
        X = self._X(X)
        y = jnp.asarray(np.asarray(y, dtype=np.float64).reshape(-1))
        return np.asarray(self.model_.log_prob(self.fitted_.params, X, y))

    def sample(self, X, random_state=None):
        """Draw y | x for every row of X, shape (n_samples,)."""
        seed = check_random_state(random_state).randint(2**31 - 1)
        X = self._X(X)
        return np.asarray(self.model_.sample(jax.random.PRNGKey(seed), self.fitted_.params, X))

    def bic(self, X, y):
        """-2 log L + P log n (P free parameters)."""
        n = np.shape(X)[0]
        return -2 * float(np.sum(self.loglik_samples(X, y))) + self.n_parameters_ * np.log(n)

    def aic(self, X, y):
        """-2 log L + 2 P."""
        return -2 * float(np.sum(self.loglik_samples(X, y))) + 2 * self.n_parameters_

    def summary(self, X, y) -> dict:
        """The fitted model as plain data (what `moestat fit --json` prints): model, estimator,
        parameters, log-likelihood, BIC, AIC, parameter count, convergence, restarts, flags
        (the log-likelihood, BIC and AIC of the data it was fitted to)."""
        check_is_fitted(self, "params_")
        return self.fitted_.summary(int(np.shape(X)[0]), self.estimator)


class MixtureOfExpertsRegressor(RegressorMixin, TableEstimator):
    """Mixture of experts fitted by EM, direct MLE or least squares.

    Parameters
    ----------
    n_experts : int, number of (trainable) experts k >= 1.
    gate, expert, noise : part specs, e.g. "softmax", "ridge:tanh", "gaussian".
    estimator : "em" | "mle" | "newton" | "lse" ("lse" fits a regression MoE y = f(x) + eps;
        "newton": direct MLE by Newton steps, models with at most 64 free parameters).
    kind : "auto" | "mixture" | "regression"; auto = regression for "lse" or sigmoid gates.
    n_init : restarts run to convergence, chosen emEM-style from 5 x n_init short runs of
        four kinds of data-driven starts (moestat/table_fit.py); the best objective is kept.
    max_iter, tol : stopping rule (relative change of the per-sample objective).
    finish : "none" | "newton" (with "em": EM to 1e-6, then Newton steps each followed by an
        EM iteration, to tol — converged where EM crawls, e.g. more experts than the data
        hold; models with at most 64 free parameters; moestat/fit/em_newton.py).
    random_state : seed for the restarts.
    standardise : fit on standardised features and response where the model can follow
        (moestat/standardise.py); parameters are always reported on the user's scale.

    After `fit`: params_ (named parameters), loglik_, objective_, converged_, n_iter_,
    restart_objectives_, n_reached_best_ (restarts that reached the best optimum), params_se_
    (standard errors from the observed information, moestat/standard_errors.py; NaN when the
    information is singular),
    at_bound_, degenerate_ (list of reasons among "floored", "empty", "separated"; empty when
    the fit is regular — a non-empty list also issues a DegenerateFitWarning), underdetermined_
    (fewer rows than free parameters: fitted, with a DegenerateFitWarning, since small
    cross-validation folds are legitimate; `moestat fit` refuses such a table instead).
    """

    def __init__(self, n_experts=3, gate="softmax", expert="linear", noise="gaussian",
                 estimator="em", n_init=20, max_iter=500, tol=1e-8, random_state=None,
                 kind="auto", standardise=True, finish="none"):
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
        self.standardise = standardise
        self.finish = finish

    def _build_model(self, n_features: int) -> MixtureOfExperts:
        self._check_numbers()
        return build_model(self.n_experts, n_features, gate=self.gate, expert=self.expert,
                           noise=self.noise, estimator=self.estimator, kind=self.kind,
                           finish=self.finish)

    def fit(self, X, y, sample_weight=None):
        """Fit to X (n_samples, n_features), y (n_samples,). Returns self."""
        X, y = validate_data(self, X, y, y_numeric=True, dtype=np.float64)
        return self._fit_table(X, y, sample_weight)

    def select(self, X, y, experts=range(1, 7), criterion="bic", sample_weight=None):
        """Fit each number of experts in `experts` and keep the one `criterion` ("bic", "icl",
        "aic": lower is better; "dic": the dendrogram of mixing measures of the largest fit)
        prefers: returns self fitted with it (n_experts set to it), with selection_ =
        {"criterion", "table": [{"k", "loglik", "bic", "icl", "aic", "n_parameters"}],
        "selected_k", "dendrogram"} — what `moestat fit --experts 1..6` prints. Warnings of
        the kept fit are re-issued; the others' are dropped."""
        check_criterion(criterion)
        ks = sorted({int(k) for k in experts})
        if not ks or ks[0] < 1:
            raise InputError(f"experts must be numbers >= 1, got {list(experts)!r}")
        if criterion == "dic" and np.ndim(X) == 2:
            check_dendrogram_model(self._build_model(np.shape(X)[1]))
        fitted, caught = [], []
        for k in ks:
            with warnings.catch_warnings(record=True) as w:
                warnings.simplefilter("always")
                fitted.append(clone(self).set_params(n_experts=k).fit(X, y, sample_weight))
            caught.append(w)
        best, selection = choose_experts([est.fitted_ for est in fitted],
                                         int(np.shape(X)[0]), criterion)
        self.__dict__.update(fitted[best].__dict__)
        self.selection_ = selection
        for w in caught[best]:
            warnings.warn(w.message, w.category, stacklevel=2)
        return self

    # ---- prediction ---------------------------------------------------------------------------
    def predict(self, X):
        """E[y | x], shape (n_samples,)."""
        X = self._X(X)
        return np.asarray(self.model_.mean(self.fitted_.params, X))

    def predict_proba(self, X):
        """Gate weights w_i(x), shape (n_samples, n_components)."""
        X = self._X(X)
        return np.asarray(self.model_.gate_weights(self.fitted_.params, X))

    def predict_experts(self, X):
        """Expert means h_i(x), shape (n_samples, n_components)."""
        X = self._X(X)
        return np.asarray(self.model_.expert_means(self.fitted_.params, X))

    def score(self, X, y, sample_weight=None):
        """Mean log-likelihood (mixture models) or minus the mean squared error (regression)."""
        X = self._X(X)
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        if self.model_.kind == "regression":
            per = -(y - np.asarray(self.model_.mean(self.fitted_.params, X))) ** 2
        else:
            per = np.asarray(self.model_.log_prob(self.fitted_.params, X, jnp.asarray(y)))
        return float(np.average(per, weights=sample_weight))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # score() is a log-likelihood, not R^2: sklearn's "score > 0.5" check does not apply
        tags.regressor_tags.poor_score = True
        return tags
