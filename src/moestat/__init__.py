"""moestat: statistics of mixture-of-experts models.

Simulate MoE data, fit MoE models (EM, gradient MLE, least squares) and measure how fast the
estimates converge. Estimation runs in JAX with float64 (enabled on import).
"""

import jax

jax.config.update("jax_enable_x64", True)

from moestat.errors import InputError  # noqa: E402
from moestat.model import FrozenExpert, MixtureOfExperts, MoEParams  # noqa: E402

__version__ = "0.1.0"

__all__ = ["FrozenExpert", "InputError", "MixtureOfExperts", "MoEParams", "__version__"]

__all__ += ["MixtureOfExpertsRegressor"]


def __getattr__(name: str):
    """`moestat.MixtureOfExpertsRegressor` on first use: importing scikit-learn costs ~0.8 s,
    which a command-line sweep (and each of its worker processes) does not need."""
    if name == "MixtureOfExpertsRegressor":
        from moestat.estimator import MixtureOfExpertsRegressor

        return MixtureOfExpertsRegressor
    raise AttributeError(f"module 'moestat' has no attribute {name!r}")
