"""moestat: statistics of mixture-of-experts models.

Simulate MoE data, fit MoE models (EM, gradient MLE, least squares) and measure how fast the
estimates converge. Estimation runs in JAX with float64 (enabled on import).
"""

from moestat.jax_options import set_option

set_option("jax_enable_x64", True)

from moestat.errors import InputError  # noqa: E402

__version__ = "0.1.0"

__all__ = ["FrozenExpert", "InputError", "MixtureOfExperts", "MoEParams", "__version__"]

__all__ += ["MixtureOfExpertsClassifier", "MixtureOfExpertsRegressor"]


_LAZY = {"FrozenExpert": "moestat.model", "MixtureOfExperts": "moestat.model",
         "MoEParams": "moestat.model", "MixtureOfExpertsRegressor": "moestat.estimator",
         "MixtureOfExpertsClassifier": "moestat.classifier"}


def __getattr__(name: str):
    """The public classes on first use: importing JAX costs ~1 s and scikit-learn ~0.8 s,
    which a command that refuses bad input (or a sweep worker) does not need."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'moestat' has no attribute {name!r}")
