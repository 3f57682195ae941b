"""scikit-learn classifier: a mixture of multinomial-logistic experts under a gate
(classification MoE, docs/models.md), fitted by EM with the regressor's restarts.

    P(y = c_l | x) = sum_i w_i(x) softmax_l(eta_il . x + tau_il),  l = 0..R-1

over the R labels seen in `fit` (`classes_`, sorted; the last is each expert's reference
class). `params_` names: the gate's (as the regressor's), expert.eta (k, R-1, d),
expert.tau (k, R-1). `score` is the mean log-likelihood of the labels (not the accuracy).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import validate_data

from moestat.errors import InputError
from moestat.estimator import TableEstimator
from moestat.model import MixtureOfExperts
from moestat.table_fit import build_model


class MixtureOfExpertsClassifier(ClassifierMixin, TableEstimator):
    """Mixture of multinomial-logistic experts fitted by EM (or direct MLE).

    Parameters
    ----------
    n_experts : int, number of experts k >= 1.
    gate : a normalised gate spec ("softmax", "laplace", "topk_softmax:2", ...).
    estimator : "em" | "mle" | "newton" (at most 64 free parameters).
    n_init, max_iter, tol, random_state, standardise, finish : as MixtureOfExpertsRegressor.

    After `fit`: classes_, and the regressor's fitted attributes (params_, loglik_,
    converged_, n_reached_best_, params_se_, degenerate_, ...); "separated" among the
    degenerate_ reasons when a logit coefficient ends on its box (labels that some expert or
    the gate separates).
    """

    def __init__(self, n_experts=2, gate="softmax", estimator="em", n_init=10, max_iter=500,
                 tol=1e-8, random_state=None, standardise=True, finish="none"):
        self.n_experts = n_experts
        self.gate = gate
        self.estimator = estimator
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.standardise = standardise
        self.finish = finish

    def _build_model(self, n_features: int) -> MixtureOfExperts:
        self._check_numbers()
        if self.estimator not in ("em", "mle", "newton"):
            raise InputError("estimator must be 'em', 'mle' or 'newton' for classification, got "
                             f"{self.estimator!r}")
        return build_model(self.n_experts, n_features, gate=self.gate,
                           expert=f"multinomial:{max(len(getattr(self, 'classes_', ())), 2)}",
                           noise="categorical", estimator=self.estimator,
                           kind="classification", finish=self.finish)

    def fit(self, X, y, sample_weight=None):
        """Fit to X (n_samples, n_features) and labels y (n_samples,). Returns self."""
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise InputError(f"y holds one class ({self.classes_[0]!r}); a classifier needs "
                             "at least two")
        return self._fit_table(X, codes.astype(np.float64), sample_weight, target="label")

    def _codes(self, y) -> np.ndarray:
        """Labels -> indices into classes_ (refusing labels not seen in fit)."""
        y = np.asarray(y).reshape(-1)
        idx = np.searchsorted(self.classes_, y)
        idx = np.clip(idx, 0, len(self.classes_) - 1)
        if not np.all(self.classes_[idx] == y):
            raise InputError("y holds labels not seen in fit")
        return idx.astype(np.float64)

    def predict_proba(self, X):
        """P(y = classes_[l] | x), shape (n_samples, R)."""
        p = np.exp(self.predict_log_proba(X))
        return p / p.sum(axis=1, keepdims=True)  # rows sum to 1 to the last bit

    def predict_log_proba(self, X):
        X = self._X(X)
        return np.asarray(self.model_.class_log_probs(self.fitted_.params, X))

    def predict(self, X):
        """The most probable label, shape (n_samples,)."""
        best = np.argmax(self.predict_log_proba(X), axis=1)  # checks that the fit exists
        return self.classes_[best]

    def predict_gate(self, X):
        """Gate weights w_i(x), shape (n_samples, n_experts)."""
        X = self._X(X)
        return np.asarray(self.model_.gate_weights(self.fitted_.params, X))

    def loglik_samples(self, X, y):
        """log P(y | x) per sample, shape (n_samples,)."""
        return super().loglik_samples(X, self._codes(y))

    def score(self, X, y, sample_weight=None):
        """Mean log-likelihood of the labels (the log-loss with its sign flipped)."""
        return float(np.average(self.loglik_samples(X, y), weights=sample_weight))

    def sample(self, X, random_state=None):
        """Draw a label for every row of X, shape (n_samples,)."""
        return self.classes_[super().sample(X, random_state).astype(int)]
