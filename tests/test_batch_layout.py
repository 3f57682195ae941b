"""Lanes per pass (fit/batch_layout.py): the grouping rule, and the same fits as one vmap."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from moestat.fit import compile_batch, near_truth
from moestat.fit.batch_layout import LANE_ROWS, cpu_cores, lanes_per_pass
from moestat.fit.result import FitOptions
from moestat.model import MixtureOfExperts


def test_a_gpu_runs_every_lane_at_once():
    assert lanes_per_pass(20, 100_000, backend="gpu") == 20


@pytest.mark.parametrize("R", [1, 7, 10, 20, 40])
@pytest.mark.parametrize("n", [100, 8859, 29764, 100_000, 10**6])
def test_cpu_groups_divide_the_lanes_and_fit_the_cache(R, n):
    g = lanes_per_pass(R, n, backend="cpu")
    assert 1 <= g <= R and R % g == 0
    # at most LANE_ROWS rows unless the cores alone ask for more; a multiple of the cores
    # whenever R has such a divisor that is small enough
    assert g * n <= LANE_ROWS or g <= cpu_cores()
    cores = cpu_cores()
    if any(R % c == 0 and c % cores == 0 and c <= max(cores, LANE_ROWS // n)
           for c in range(1, R + 1)):
        assert g % cores == 0


def test_small_data_runs_every_lane_in_one_vmap():
    assert lanes_per_pass(20, 1000, backend="cpu") == 20


@pytest.mark.parametrize("group", [1, 2, 6])
def test_grouped_lanes_give_the_vmapped_fits(group):
    """lax.map over groups of lanes = one vmap over all lanes, up to the summation order."""
    model = MixtureOfExperts.create("softmax", "linear", "gaussian", n_experts=2, n_features=2)
    truth = model.from_named({"gate.beta1": [[1.0, -1.0], [0.0, 0.0]],
                              "gate.beta0": [0.2, 0.0], "expert.a": [[1.0, 0.5], [-1.0, 0.0]],
                              "expert.b": [0.5, -0.5], "noise.var": [0.1, 0.2]})
    R, n = 6, 400
    keys = jax.random.split(jax.random.PRNGKey(3), R)
    X = jax.vmap(lambda k: jax.random.normal(k, (n, 2)))(keys)
    y = jax.vmap(lambda k, x: model.sample(k, truth, x))(keys, X)
    w = np.ones((R, n))
    start = jax.vmap(lambda k: near_truth(model, truth, jax.random.fold_in(k, 1), 0.2))(keys)
    options = FitOptions(max_iter=30)
    vmapped = compile_batch(model, "em", options, lanes_per_pass=R)(X, y, w, start, None)
    grouped = compile_batch(model, "em", options, lanes_per_pass=group)(X, y, w, start, None)
    np.testing.assert_array_equal(grouped.n_iter, vmapped.n_iter)
    np.testing.assert_array_equal(grouped.converged, vmapped.converged)
    for a, b in zip(jax.tree_util.tree_leaves(grouped.params),
                    jax.tree_util.tree_leaves(vmapped.params), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
