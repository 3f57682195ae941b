"""Standard errors of a fitted model from the observed information.

With theta the free, gauge-fixed coordinates of the fit on the standardised data
(`MixtureOfExperts.to_free`: log variances, softmax gate rows but the last), the observed
information is I = -Hessian of sum_t w_t log p(y'_t | x'_t; theta) at the estimate, and

    Cov(theta_hat) ~ I^-1,   Cov(psi_hat) ~ J I^-1 J^T,   SE = sqrt(diag)

for the reported parameters psi = g(theta) on the user's scale (g = `to_user_scale` after
`from_free`, J its Jacobian: the delta method). The gauge row of a softmax gate is fixed, so its
SE is 0. When I is not positive definite — a parameter on its bound, an empty or separated
expert, fewer rows than parameters — the information says nothing about some direction: every
SE is then NaN (JSON null) and `ok` is False, rather than numbers from a pseudo-inverse.

The parametric bootstrap (`bootstrap_standard_errors`) is the alternative when the information
is singular or n is small: responses drawn from the fit, each refitted from the estimate.

Intervals estimate +- 1.96 SE cover the truth at about the nominal rate when the model is
regular and n is large; `model_checks.coverage_study` measures it (docs/results.md).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from moestat.model import MixtureOfExperts, MoEParams
from moestat.standardise import Scaling, to_user_scale


def _program(model: MixtureOfExperts):
    """se(X', y', w, params', scaling) -> (SEs flattened in `model.named` order, ok); the
    scaling's numbers are arguments, so tables of one shape share the program."""

    def run(X, y, weights, params, x_shift, x_scale, y_shift, y_scale):
        scaling = Scaling(x_shift, x_scale, y_shift, y_scale)
        theta, unravel = ravel_pytree(model.to_free(params))

        def loglik(t):
            return jnp.sum(weights * model.log_prob(model.from_free(unravel(t)), X, y))

        def reported(t):
            return ravel_pytree(to_user_scale(model, model.from_free(unravel(t)), scaling))[0]

        info = -jax.hessian(loglik)(theta)
        info = (info + info.T) / 2
        chol = jnp.linalg.cholesky(info)
        ok = jnp.all(jnp.isfinite(chol))
        J = jax.jacobian(reported)(theta)
        solved = jax.scipy.linalg.cho_solve((chol, True), J.T)  # I^-1 J^T
        var = jnp.sum(J.T * solved, axis=0)
        se = jnp.where(ok, jnp.sqrt(jnp.maximum(var, 0.0)), jnp.nan)
        return se, ok

    return run


def _stored(model: MixtureOfExperts, params: MoEParams, scaling: Scaling, X, y, weights):
    """The program store's (name, static, build, *arguments) of the SE program (`params` may
    be shapes: jax.ShapeDtypeStruct leaves)."""

    def f64(a):
        return a if isinstance(a, jax.ShapeDtypeStruct) else jnp.asarray(a, dtype=jnp.float64)

    return ("standard_errors", (model,), lambda: _program(model), f64(X), f64(y), f64(weights),
            jax.tree_util.tree_map(f64, params), f64(scaling.x_shift), f64(scaling.x_scale),
            f64(scaling.y_shift), f64(scaling.y_scale))


def prepare_standard_errors(model: MixtureOfExperts, scaling: Scaling, X, y, weights,
                            program_cache: str | None) -> None:
    """Start compiling the SE program for this table's shape (program_store.prepare), so that
    it compiles while the fit does."""
    from moestat.compiling import one_pass_profile
    from moestat.program_store import prepare

    prepare(program_cache, *_stored(model, model.shapes(), scaling, X, y, weights),
            profile=one_pass_profile(np.shape(X)[0]))


def standard_errors(model: MixtureOfExperts, params: MoEParams, scaling: Scaling, X, y,
                    weights, program_cache: str | None = None) -> tuple[dict, bool]:
    """({name: SE array shaped like the parameter}, ok) for the fit `params` of the
    standardised data X, y (padded rows carry weight 0)."""
    from moestat.compiling import one_pass_profile
    from moestat.program_store import call_stored

    se, ok = call_stored(program_cache, *_stored(model, params, scaling, X, y, weights),
                         profile=one_pass_profile(np.shape(X)[0]))
    se, ok = np.asarray(se), bool(ok)
    leaves, tree = jax.tree_util.tree_flatten(to_user_scale(model, params, scaling))
    ends = np.cumsum([np.size(v) for v in leaves])  # ravel_pytree's order, in NumPy
    parts = [se[e - np.size(v):e].reshape(np.shape(v)) for v, e in zip(leaves, ends, strict=True)]
    return {k: np.asarray(v) for k, v in
            model.named(jax.tree_util.tree_unflatten(tree, parts)).items()}, ok



def bootstrap_standard_errors(model: MixtureOfExperts, params: MoEParams, scaling: Scaling,
                              X, y, weights, *, samples: int = 200, seed: int = 0,
                              estimator: str = "em", options=None) -> tuple[dict, int]:
    """Parametric bootstrap: `samples` responses drawn from the fitted model at the observed
    (standardised, padded) X, each refitted from `params` (one batched program), SE = the
    standard deviation of the refits on the user's scale. Starting every refit at the
    estimate keeps its experts' labels; refits with a non-finite objective are dropped.
    Returns ({name: SE shaped like the parameter}, refits used)."""
    from moestat.fit import FitOptions, fit_batch

    f64 = functools.partial(jnp.asarray, dtype=jnp.float64)
    X, w = f64(X), f64(weights)
    keys = jax.random.split(jax.random.PRNGKey(seed), samples)
    Y = jax.vmap(lambda k: model.sample(k, params, X))(keys)
    start = jax.tree_util.tree_map(lambda a: jnp.broadcast_to(a, (samples, *jnp.shape(a))),
                                   params)
    refits = fit_batch(model, jnp.broadcast_to(X, (samples, *X.shape)), Y, start,
                       estimator=estimator, weights=jnp.broadcast_to(w, (samples, *w.shape)),
                       options=options or FitOptions())
    user = jax.vmap(lambda p: to_user_scale(model, p, scaling))(refits.params)
    keep = np.isfinite(np.asarray(refits.objective))
    named = model.named(jax.tree_util.tree_map(np.asarray, user))
    return {k: np.std(v[keep], axis=0, ddof=1) for k, v in named.items()}, int(keep.sum())
