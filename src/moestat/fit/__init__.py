"""Estimators: EM, direct MLE and least squares, with their initialisations. The engine, the
benchmarks and the scikit-learn estimator use only the names exported here."""

from moestat.fit.api import (
    best_of_starts,
    bytes_per_fit,
    check_estimator_for,
    compile_batch,
    fit,
    fit_batch,
    fit_random,
)
from moestat.fit.batch_layout import lanes_per_pass
from moestat.fit.degeneracy import REASONS, DegenerateFitWarning
from moestat.fit.init import near_truth, perturb, random_start
from moestat.fit.result import FitOptions, FitResult

__all__ = ["REASONS", "DegenerateFitWarning", "FitOptions", "FitResult", "best_of_starts",
           "bytes_per_fit", "check_estimator_for", "compile_batch", "fit", "fit_batch",
           "fit_random", "lanes_per_pass", "near_truth", "perturb", "random_start"]
