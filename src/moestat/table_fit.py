"""One model fitted to a user's table: standardised data (moestat/standardise.py), emEM
restarts of four kinds (fit/api.py `fit_random`), the result on the user's scale.

This is what `moestat fit` runs and what `MixtureOfExpertsRegressor.fit` wraps; it imports
neither scikit-learn nor the command line, so a cold `moestat fit` pays for neither.

Rows are padded to a few bucket sizes (moestat/padding.py) with weight 0, so tables of
similar length share one compiled program; up to TABLE_ROWS rows, where a first fit is mostly
compiling, the features of a softmax-gated mixture of linear experts are padded too, with zero
columns to 2, 4, 8 or 16 (`feature_padded`), so that y ~ x and y ~ x + x^2 share one.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import jax
import numpy as np

from moestat.cache import active_directory
from moestat.compiling import TABLE_ROWS, table_profile
from moestat.errors import InputError
from moestat.fit import FitOptions, FitResult, fit_random
from moestat.fit.api import EXPLORE_FACTOR, check_estimator_for, takes_newton_steps
from moestat.fit.init import prng_key
from moestat.fit.result import FINISHES
from moestat.model import MixtureOfExperts, MoEParams
from moestat.padding import bucket_size, feature_width, pad_features, pad_rows
from moestat.standardise import Scaling, loglik_to_user_scale, scaling_for, to_user_scale

VALUE_LIMIT = 1e150  # |value| at or above this: squares overflow float64
SAME_OPTIMUM = 1e-6  # restarts within this (per sample) of the best reached the best optimum


def build_model(n_experts, n_features: int, *, gate="softmax", expert="linear",
                noise="gaussian", estimator="em", kind="auto", finish="none") -> MixtureOfExperts:
    """The model a user's fit asks for (kind "auto": classification for a label expert,
    regression for "lse" or a gate that is not normalised, else mixture), checked against
    the estimator and its finish ("none", or "newton": fit/em_newton.py)."""
    from moestat.registry import ESTIMATORS, make_gate

    if isinstance(n_experts, bool) or not isinstance(n_experts, int | np.integer) or \
            n_experts < 1:
        raise InputError(f"n_experts must be an integer >= 1, got {n_experts!r}")
    if estimator not in ESTIMATORS:
        raise InputError(f"unknown estimator {estimator!r}; expected one of "
                         f"{', '.join(ESTIMATORS)}")
    if finish not in FINISHES:
        raise InputError(f"finish must be one of {', '.join(FINISHES)}, got {finish!r}")
    if kind == "auto":
        from moestat.registry import make_expert

        kind = ("classification" if make_expert(expert).categorical else
                "regression" if (estimator == "lse" or not make_gate(gate).normalized)
                else "mixture")
    model = MixtureOfExperts.create(gate, expert, noise, n_experts=int(n_experts),
                                    n_features=n_features, kind=kind)
    check_estimator_for(model, estimator, FitOptions(finish=finish))
    return model


INERT_ZERO_COLUMNS = {("softmax", "linear")}  # (gate, expert) whose every feature enters
# through a product with a coefficient: a zero column leaves the likelihood, the starts and
# every update as they were, and its coefficients stay 0 (tests/test_table_fit_padding.py)


def feature_padded(model: MixtureOfExperts, X: np.ndarray, newton: bool = False
                   ) -> tuple[MixtureOfExperts, np.ndarray]:
    """(the model fitted, X as fitted): for a table of at most TABLE_ROWS (padded) rows of a
    model in INERT_ZERO_COLUMNS without a frozen expert, the model with feature_width(d)
    features and X with zero columns up to it; else (model, X). Not with Newton steps
    (`newton`): the Hessian costs a pass per free parameter and the zero columns add some."""
    width = feature_width(model.n_features)
    if (newton or X.shape[0] > TABLE_ROWS or width == model.n_features or model.frozen is not None
            or (model.gate.label, model.expert.label) not in INERT_ZERO_COLUMNS):
        return model, X
    return dataclasses.replace(model, n_features=width), pad_features(X, width)


def narrowed(model: MixtureOfExperts, params: MoEParams) -> MoEParams:
    """Parameters of a feature-padded fit cut to `model`'s shapes (the padded columns'
    coefficients dropped: only the feature axes differ)."""
    return jax.tree_util.tree_map(
        lambda real, a: np.asarray(a)[tuple(slice(0, n) for n in real.shape)],
        model.shapes(), params)


def underdetermined_message(n: int, p: int, model) -> str:
    return f"fewer rows than parameters: {n} samples for {p} free parameters ({model.describe()})"


def check_weights(sample_weight, n: int) -> np.ndarray:
    """(n,) finite non-negative weights, not all zero (ones when None)."""
    if sample_weight is None:
        return np.ones(n)
    w = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
    if w.shape != (n,) or not np.all(np.isfinite(w)) or np.any(w < 0):
        raise InputError(f"sample_weight must hold {n} finite values >= 0")
    if w.sum() <= 0:
        raise InputError("sample_weight must not be all zero")
    return w


@dataclass(frozen=True)
class TableFit:
    """A fitted model. params: on the user's scale (NumPy); result: the best restart's
    FitResult on the standardised scale; loglik: total weighted log-likelihood on the user's
    scale; objective: the estimator's per-sample objective on the user's scale;
    restart_objectives: (n_init,) the converged restarts' objectives (standardised scale);
    n_reached_best: restarts within SAME_OPTIMUM of the best."""

    model: MixtureOfExperts
    params: MoEParams
    scaling: Scaling
    result: FitResult
    loglik: float
    objective: float
    restart_objectives: np.ndarray
    n_reached_best: int
    n_explored: int
    data: tuple  # (X', y', weights) standardised and padded, as fitted
    estimator: str = "em"
    options: FitOptions | None = None

    @functools.cached_property
    def _standard_errors(self) -> tuple[dict, bool]:
        from moestat.standard_errors import standard_errors

        return standard_errors(self.model, self.result.params, self.scaling, *self.data,
                               active_directory())

    def bootstrap_standard_errors(self, samples: int = 200, seed: int = 0) -> tuple[dict, int]:
        """Parametric-bootstrap SEs on the user's scale and the number of refits used
        (moestat/standard_errors.py)."""
        from moestat.standard_errors import bootstrap_standard_errors

        return bootstrap_standard_errors(self.model, self.result.params, self.scaling,
                                         *self.data, samples=samples, seed=seed,
                                         estimator=self.estimator, options=self.options)

    @property
    def standard_errors(self) -> dict:
        """{name: SE shaped like the parameter} from the observed information (computed at
        the first request; NaN everywhere when the information is singular)."""
        return self._standard_errors[0]

    @property
    def standard_errors_ok(self) -> bool:
        """The observed information was positive definite."""
        return self._standard_errors[1]

    @property
    def degenerate(self) -> list[str]:
        """Reasons among "floored", "empty", "separated" (fit/degeneracy.py)."""
        return [r for r in ("floored", "empty", "separated") if bool(getattr(self.result, r))]

    def summary(self, n_samples: int, estimator: str, features=None,
                target: str = "target") -> dict:
        """Plain data (what `moestat fit --json` prints); "warnings" name the columns kept
        far from unit scale (`Scaling.off_scale`) by `features` (default x0, x1, ...)."""
        p = self.model.n_free_parameters()
        s = self.scaling
        return {
            "n_samples": int(n_samples), "model": self.model.describe(),
            "estimator": estimator, "finish": (self.options or FitOptions()).finish,
            "parameters": {k: np.asarray(v).tolist()
                           for k, v in self.model.named(self.params).items()},
            "loglik": self.loglik, "bic": -2 * self.loglik + p * np.log(n_samples),
            "aic": -2 * self.loglik + 2 * p, "n_parameters": p,
            "converged": bool(self.result.converged), "n_iter": int(self.result.n_iter),
            "at_bound": bool(self.result.at_bound), "degenerate": self.degenerate,
            "n_init": int(self.restart_objectives.shape[0]),
            "restarts": {"explored": self.n_explored,
                         "run_to_convergence": int(self.restart_objectives.shape[0]),
                         "reached_best": self.n_reached_best},
            "standardised": {"features": bool(np.any(s.x_scale != 1) or np.any(s.x_shift)),
                             "target": bool(s.y_scale != 1 or s.y_shift != 0)},
            "standard_errors": {k: np.asarray(v).tolist()
                                for k, v in self.standard_errors.items()},
            "standard_errors_ok": self.standard_errors_ok,
            "warnings": s.warnings(features or [f"x{j}" for j in range(len(s.x_scale))],
                                   target),
        }


def fit_table(model: MixtureOfExperts, X, y, sample_weight=None, *, estimator: str = "em",
              n_init: int = 20, options: FitOptions | None = None, seed: int = 0,
              explore: int = EXPLORE_FACTOR, standardise: bool = True,
              with_standard_errors: bool = False) -> TableFit:
    """Fit `model` to X (n, d), y (n,) (NumPy float64, already validated for shape); its
    standard errors come from the observed information when asked for
    (moestat/standard_errors.py). with_standard_errors: they will be asked for, so their
    program compiles alongside the fit's."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    n = y.shape[0]
    w = check_weights(sample_weight, n)
    if not (np.all(np.abs(X) < VALUE_LIMIT) and np.all(np.abs(y) < VALUE_LIMIT)):
        raise InputError(f"values too large (|value| >= {VALUE_LIMIT:.0e}): rescale the data")
    scaling = scaling_for(model, X, y, w) if standardise else Scaling(
        np.zeros(X.shape[1]), np.ones(X.shape[1]))
    Xs, ys = scaling.apply(X, y)
    Xp, yp, wp = pad_rows(Xs, ys, w, bucket_size(n))
    standard_errors_program = None
    if with_standard_errors:
        from moestat.standard_errors import prepare_standard_errors

        standard_errors_program = functools.partial(prepare_standard_errors, model, scaling,
                                                    Xp, yp, wp, active_directory())
    options = options or FitOptions()
    fitted, Xf = feature_padded(model, Xp, takes_newton_steps(estimator, options.finish))
    result, objectives = fit_random(fitted, Xf, yp, prng_key(seed), int(n_init),
                                    estimator=estimator, weights=wp,
                                    options=options, explore=explore,
                                    program_cache=active_directory(),
                                    profile=table_profile(len(yp)),
                                    while_compiling=standard_errors_program)
    result, objectives = jax.device_get((result, objectives))
    result = result._replace(params=narrowed(model, result.params))
    if not np.isfinite(result.objective):
        raise InputError("every restart ended with a non-finite objective; check the data")
    objectives = np.asarray(objectives)
    finite = objectives[np.isfinite(objectives)]
    reached = int(np.sum(finite >= float(result.objective) - SAME_OPTIMUM))
    loglik = loglik_to_user_scale(float(result.loglik) * float(w.sum()), float(w.sum()),
                                  scaling)
    objective = float(result.objective)
    least_squares = model.kind == "regression" and estimator in ("lse", "sgd")
    objective = objective * scaling.y_scale**2 if least_squares else loglik / float(w.sum())
    user = jax.tree_util.tree_map(np.asarray, to_user_scale(model, result.params, scaling))
    return TableFit(model, user, scaling, result, loglik, objective, objectives, reached,
                    int(explore) * int(n_init), (Xp, yp, wp), estimator, options)
