"""Flags for fits that ended degenerate (docs/models.md, "Parameter space").

The box bounds keep every estimate finite, but an estimate can still sit where the model
degenerates; each such fit is flagged, never hidden:

* floored   — a noise variance on its lower bound (a component collapsing onto a few points);
* empty     — a component whose gate carries less than one sample's worth of weight,
              sum_j w_j g_i(x_j) / sum_j w_j < 1 / #{j: w_j > 0} (an expert without data);
* separated — a gate coefficient on its box (logits running to infinity: a separating gate,
              or a prompt weight / temperature at its limit), or a classification expert's
              logit coefficient on its box (labels it separates);
* nonfinite — the objective or some parameter is not finite (cannot happen with the floors
              and the loop's last-finite-state rule, checked nonetheless).

`degenerate` is their disjunction. Box bounds on *expert* coefficients (`expert_bound`, the
compact parameter space of least squares) are reported by `at_bound`, not here.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from moestat.fit.bounds import floored, on_bound


class Degeneracy(NamedTuple):
    floored: jax.Array
    empty: jax.Array
    separated: jax.Array
    nonfinite: jax.Array

    @property
    def degenerate(self) -> jax.Array:
        return self.floored | self.empty | self.separated | self.nonfinite


def degeneracy(model, params, X, weights, bounds, objective) -> Degeneracy:
    """Flags of one fit: X (n, d), weights (n,) >= 0 (zero rows are padding), bounds the
    (lower, upper) box the fit ran in, objective its final objective (scalar)."""
    mass = jnp.sum(weights[:, None] * model.gate_weights(params, X), axis=0) / jnp.sum(weights)
    rows = jnp.sum(weights > 0)
    finite = jnp.isfinite(objective) & jnp.all(jnp.stack(
        [jnp.all(jnp.isfinite(v)) for v in jax.tree_util.tree_leaves(params)]))
    separated = on_bound(params.gate, (bounds[0].gate, bounds[1].gate))
    if model.expert.categorical:
        separated |= on_bound(params.expert, (bounds[0].expert, bounds[1].expert))
    return Degeneracy(
        floored=(floored(params.noise.var, bounds[0].noise.var) if "var" in params.noise._fields
                 else jnp.asarray(False)),
        empty=jnp.any(mass < 1.0 / rows),
        separated=separated,
        nonfinite=~finite,
    )


class DegenerateFitWarning(UserWarning):
    """Issued by the estimator when its best fit is degenerate (see the module docstring)."""


REASONS = {"floored": "a variance on its floor", "empty": "an expert without data",
           "separated": "a gate coefficient on its box", "nonfinite": "non-finite values"}
