"""Padded sample sizes (moestat/padding.py): the grouping is the cheapest one, and a cell
fitted at a padded size gives the rows of the unpadded fit."""

from __future__ import annotations

import itertools

import jax
import numpy as np
import pytest

from moestat.experiments import cell as sweep_cell
from moestat.experiments.config import parse_config
from moestat.experiments.grid import Cell, replicate_keys
from moestat.experiments.settings import build
from moestat.experiments.simulation import padding_weights, simulate, simulators
from moestat.fit import fit_batch
from moestat.padding import bucket_size, pad_rows, padded_rows
from rows import assert_same_rows


def _cost(grid, plan, replicates, compile_rows):
    return compile_rows * len(set(plan.values())) + replicates * sum(plan[n] for n in grid)


def _brute_force(grid, replicates, compile_rows):
    """The cheapest plan over every split of the sorted grid into consecutive groups."""
    best = None
    for cuts in itertools.product([False, True], repeat=len(grid) - 1):
        plan, group = {}, [grid[0]]
        for n, cut in zip(grid[1:], cuts, strict=True):
            if cut:
                plan.update({m: group[-1] for m in group})
                group = []
            group.append(n)
        plan.update({m: group[-1] for m in group})
        cost = _cost(grid, plan, replicates, compile_rows)
        best = cost if best is None else min(best, cost)
    return best


@pytest.mark.parametrize("seed", range(6))
def test_the_plan_is_the_cheapest_grouping(seed):
    rng = np.random.default_rng(seed)
    grid = sorted(set(rng.integers(100, 200_000, size=9).tolist()))
    replicates = int(rng.integers(1, 80))
    compile_rows = int(rng.integers(10_000, 5_000_000))
    plan = padded_rows(grid, replicates, compile_rows)
    assert sorted(plan) == grid
    assert all(plan[n] >= n and plan[n] in grid for n in grid)
    assert _cost(grid, plan, replicates, compile_rows) == _brute_force(grid, replicates,
                                                                       compile_rows)


def test_the_plan_between_its_limits():
    grid = [1000, 2000, 4000, 8000]
    assert padded_rows(grid, 40, compile_rows=0) == {n: n for n in grid}  # compiles are free
    assert set(padded_rows(grid, 40, compile_rows=10**12).values()) == {8000}
    assert padded_rows([5, 5, 3], 1) == {3: 5, 5: 5}  # duplicates and order do not matter


def _config(init, setting="s"):
    return parse_config({
        "name": "pad", "seed": 3, "replicates": 4, "block": 4, "n": [300, 700],
        "metrics": ["D1", "a"],
        "settings": [{"name": setting, "n_experts": 2, "n_features": 1, "init": init,
                      "x": {"dist": "uniform", "low": 0.0, "high": 1.0},
                      "truth": {"gate.beta1": [[6.0], [0.0]], "gate.beta0": [-3.0, 0.0],
                                "expert.a": [[-3.0], [3.0]], "expert.b": [2.0, -1.0],
                                "noise.var": [0.05, 0.08]}}]})


def test_a_padded_cell_gives_the_unpadded_rows(monkeypatch):
    """n = 300 shares the n = 700 program (4 replicates: padding 4 x 400 rows is cheaper than
    a compile). Its rows equal those of the fit at exactly 300 rows: counts and flags
    exactly, floats to rounding (zero-weight rows add exact zeros, but XLA may sum a longer
    axis in another order: the same ~1e-13 relative as another batch width)."""
    config = _config({"kind": "near_truth", "scale": 0.1})
    setting = config.settings[0]
    assert sweep_cell.fitted_rows(config, setting, 300) == 700
    cell = Cell("s", 300, 0, 4)
    padded = sweep_cell.run_cell(config, cell)
    monkeypatch.setattr(sweep_cell, "fitted_rows", lambda config, setting, n: n)
    exact = sweep_cell.run_cell(config, cell)
    assert_same_rows(padded, exact)


def test_random_starts_are_not_padded():
    """A data-driven start draws from the rows it is given: padding would change it."""
    config = _config({"kind": "random", "n_init": 2})
    assert sweep_cell.fitted_rows(config, config.settings[0], 300) == 300


def test_padding_rows_keep_the_first_n_rows():
    """simulate(n, rows) draws the same first n rows whatever `rows` is, with one sampler;
    the padding rows repeat the data cyclically (finite, and no sampling spent on them). The
    padded call adds no compiled sampler program (counted before and after it: in a full suite
    run jax's fast-path count was found at 0 after a call, so totals are not compared)."""
    config = _config({"kind": "near_truth", "scale": 0.1}, setting="only_here")
    models = build(config.settings[0])
    truth = models.truth(300)
    keys = replicate_keys(3, "only_here", 300, range(2))
    sample_chunk, _ = simulators(config.settings[0].model_dump_json())
    X, y, start, _ = simulate(models, keys, truth, 300)
    compiled = sample_chunk._cache_size()
    Xp, yp, startp, _ = simulate(models, keys, truth, 300, 5000)
    # one compiled sampler serves both sizes (a threefry sampler compile costs ~2 s)
    assert sample_chunk._cache_size() == compiled
    assert X.shape == (2, 300, 1) and Xp.shape == (2, 5000, 1)
    np.testing.assert_array_equal(Xp[:, :300], X)
    np.testing.assert_array_equal(yp[:, :300], y)
    np.testing.assert_array_equal(Xp[:, 300:600], X)  # row i >= n repeats row i mod n
    np.testing.assert_array_equal(yp[:, 4800:5000], y[:, 0:200])  # 4800 = 16 * 300
    np.testing.assert_array_equal(startp.expert.a, start.expert.a)


def test_the_fit_program_compiled_meanwhile_is_the_one_the_fit_runs():
    """A block's fit program is compiled on a helper thread while its data are simulated;
    fit_batch then finds it compiled (no second compile), and a second block of the same
    shape starts no thread."""
    config = _config({"kind": "near_truth", "scale": 0.1}, setting="meanwhile")
    setting = config.settings[0]
    models = build(setting)
    truth = models.truth(700)
    options = models.options
    sweep_cell._FIT_PROGRAMS.clear()
    thread = sweep_cell._compile_fit_meanwhile(models, truth, 4, 700)
    assert thread is not None
    keys = replicate_keys(config.seed, setting.name, 700, range(4))
    X, y, start, _ = simulate(models, keys, truth, 700)
    thread.join()
    weights = padding_weights(700, y.shape)
    jax.block_until_ready((X, y, weights, start))
    compiles = []

    def count(event, seconds, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            compiles.append(seconds)

    jax.monitoring.register_event_duration_secs_listener(count)
    try:
        result = fit_batch(models.fit_model, X, y, start, estimator=setting.estimator,
                           options=options, weights=weights, split_after=sweep_cell.SPLIT_AFTER)
        jax.block_until_ready(result)
    finally:
        jax.monitoring.unregister_event_duration_listener(count)
    assert compiles == [] and np.all(np.isfinite(result.objective))
    assert sweep_cell._compile_fit_meanwhile(models, truth, 4, 700) is None


@pytest.mark.parametrize("n", [1, 31, 256, 257, 1000, 4097, 12345, 10**6])
def test_bucket_sizes_cover_n_on_a_geometric_grid(n):
    """The estimator's padded size is >= n: one of three sizes up to 4096 rows, above them at
    most 2^(1/4) x n."""
    size = bucket_size(n)
    assert size >= n
    assert size in (256, 1024, 4096) if n <= 4096 else size <= 2 ** 0.25 * n + 1


def test_pad_rows_repeats_rows_cyclically_with_zero_weight():
    X, y, w = np.arange(6.0).reshape(3, 2), np.array([1.0, 2.0, 3.0]), np.array([1, 2, 3.0])
    Xp, yp, wp = pad_rows(X, y, w, 7)
    np.testing.assert_array_equal(yp, [1, 2, 3, 1, 2, 3, 1])
    np.testing.assert_array_equal(Xp[3:6], X)
    np.testing.assert_array_equal(wp, [1, 2, 3, 0, 0, 0, 0])
