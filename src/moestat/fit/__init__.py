"""Estimators: EM, direct MLE and least squares, with their initialisations."""

from moestat.fit.api import check_estimator_for, fit, fit_batch, fit_random
from moestat.fit.init import near_truth, perturb, random_start
from moestat.fit.result import FitOptions, FitResult

__all__ = ["FitOptions", "FitResult", "check_estimator_for", "fit", "fit_batch", "fit_random",
           "near_truth", "perturb", "random_start"]
