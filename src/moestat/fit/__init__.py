"""Estimators: EM, direct MLE and least squares, with their initialisations."""

from moestat.fit.api import (
    best_of_starts,
    bytes_per_fit,
    check_estimator_for,
    compile_batch,
    fit,
    fit_batch,
    fit_random,
)
from moestat.fit.init import near_truth, perturb, random_start
from moestat.fit.result import FitOptions, FitResult

__all__ = ["FitOptions", "FitResult", "best_of_starts", "bytes_per_fit", "check_estimator_for",
           "compile_batch", "fit", "fit_batch", "fit_random", "near_truth", "perturb",
           "random_start"]
