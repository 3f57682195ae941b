"""Running a cell (experiments/cell.py) and what it uses: replicate keys, memory blocks,
live executables, multi-start, and the best k-atom approximation used as a reference."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from moestat import InputError, memory
from moestat.experiments import cell as sweep_cell
from moestat.experiments import grid, resources
from moestat.experiments.config import Setting, parse_config
from moestat.experiments.metrics import best_approximation
from moestat.experiments.settings import build
from moestat.fit import bytes_per_fit, near_truth
from rows import assert_same_rows


def _setting(beta1_first: float, reference: str = "best_approximation", **kw) -> Setting:
    return Setting.model_validate({
        "name": "s", "gate": "sigmoid", "expert": "ridge:gelu", "kind": "regression",
        "estimator": "lse", "n_experts": 3, "n_features": 1, "reference": reference,
        "x": {"dist": "uniform", "low": 0.0, "high": 1.0},
        "init": {"kind": "near_truth", "scale": 0.1, "assignment": [0, 0, 1]},
        "truth": {"gate.beta1": [[beta1_first], [-8.0]], "gate.beta0": [-4.0, 4.0],
                  "expert.a": [[6.0], [-6.0]], "expert.b": [-4.5, 1.5], "noise.var": 4e-4},
        **kw})


def _misfit(built, params, truth):
    X = jnp.linspace(0, 1, 2001)[:, None]
    return float(jnp.max(jnp.abs(built.fit_model.mean(params, X)
                                 - built.truth_model.mean(truth, X))))


def test_best_approximation_is_the_truth_when_the_split_is_exact():
    """Regime 1 (the split atom's gate slope is 0): two copies of a constant sigmoid weight
    represent it exactly, so the projection reproduces the regression function."""
    s = _setting(0.0)
    built = build(s)
    truth = built.truth(1000)
    ref = best_approximation(s.model_dump_json(), 1000)
    assert _misfit(built, ref, truth) < 1e-6


@pytest.mark.slow
def test_best_approximation_improves_on_an_inexact_split():
    """Regime 2 (slope 8): sigmoid(8x - 4) is not a sum of two copies, so the exact split
    misfits the truth; the projection fits it better (and not perfectly for GELU experts)."""
    s = _setting(8.0)
    built = build(s)
    truth = built.truth(1000)
    split = near_truth(built.fit_model, truth, jax.random.PRNGKey(0), 0.0, (0, 0, 1))
    ref = best_approximation(s.model_dump_json(), 1000)
    assert _misfit(built, ref, truth) < 0.1 * _misfit(built, split, truth)
    assert np.all(np.isfinite(np.asarray(ref.gate.beta1)))


def test_best_approximation_needs_a_regression_model():
    with pytest.raises(ValueError, match="kind = 'regression'"):
        Setting.model_validate({**_setting(8.0).model_dump(), "kind": "mixture",
                                "estimator": "em"})
    cfg = {"name": "x", "replicates": 2, "metrics": ["l2"], "n": [100, 200],
           "settings": [{**_setting(8.0).model_dump(), "kind": "mixture"}]}
    with pytest.raises(InputError, match="kind = 'regression'"):
        parse_config(cfg)


def test_executables_are_dropped_in_groups_of_shapes(monkeypatch):
    """A sweep process keeps the executables of at most MAX_LIVE_SHAPES (setting, n) pairs
    (memory maps), and does not drop them when a shape repeats or before the limit."""
    calls = []
    monkeypatch.setattr(resources.jax, "clear_caches", lambda: calls.append(1))
    monkeypatch.setattr(resources, "_LIVE_SHAPES", set())
    m = resources.MAX_LIVE_SHAPES
    for n in range(m):
        resources.limit_live_executables("s", n)
        resources.limit_live_executables("s", n)  # a second block of the same shape
    assert calls == []
    resources.limit_live_executables("s", m)  # one shape too many: drop, start a new group
    assert calls == [1] and resources._LIVE_SHAPES == {("s", m)}


def _cell_config():
    return parse_config({
        "name": "blocks", "seed": 2, "replicates": 6, "block": 6, "n": [500, 1000],
        "metrics": ["D1", "a"],
        "settings": [{"name": "exact", "n_experts": 2, "n_features": 1,
                      "x": {"dist": "uniform", "low": 0.0, "high": 1.0},
                      "truth": {"gate.beta1": [[6.0], [0.0]], "gate.beta0": [-3.0, 0.0],
                                "expert.a": [[-3.0], [3.0]], "expert.b": [2.0, -1.0],
                                "noise.var": [0.05, 0.08]}}]})


def test_a_cell_over_the_memory_budget_runs_in_replicate_blocks(monkeypatch):
    """With a budget that holds 2 replicates at n = 1000, the 6-replicate cell runs as 3
    blocks and its rows equal the one-block run's (fit_seconds aside): exactly for counts and
    flags, to rounding for floats (XLA's vectorised code may round differently for another
    batch width: ~1e-13 relative measured)."""
    config = _cell_config()
    cell = grid.Cell("exact", 1000, 0, 6)
    model = build(config.settings[0]).fit_model
    per = bytes_per_fit(model, 1000)
    assert bytes_per_fit(model, 2000) == 2 * per  # linear in n
    monkeypatch.setenv("MOESTAT_MEMORY_GB", repr(2.5 * per / 2**30))
    assert resources.replicate_blocks(list(range(6)), model, 1000) == [[0, 1], [2, 3], [4, 5]]
    blocked = sweep_cell.run_cell(config, cell)
    monkeypatch.setenv("MOESTAT_MEMORY_GB", "1000")
    assert resources.replicate_blocks(list(range(6)), model, 1000) == [list(range(6))]
    whole = sweep_cell.run_cell(config, cell)
    assert_same_rows(blocked, whole)
    monkeypatch.setenv("MOESTAT_MEMORY_GB", "lots")
    with pytest.raises(InputError, match="MOESTAT_MEMORY_GB must be a number"):
        memory.budget()


def _multistart_config(best_of: int | None):
    init = {"kind": "near_truth", "scale": 0.3, "assignment": [0, 0, 1]}
    if best_of is not None:
        init["best_of"] = best_of
    setting = _setting(8.0, reference="truth", max_iter=40).model_dump(mode="json",
                                                                  exclude_defaults=True)
    return parse_config({"name": "starts", "seed": 1, "replicates": 8, "block": 8, "n": [400],
                         "metrics": ["D_LSE"], "settings": [{**setting, "init": init}]})


def test_near_truth_multistart_keeps_the_best_objective_per_replicate():
    """init.best_of = 4 near-truth starts: every replicate's least-squares objective is at least
    the single start's (that start is the first of the four, from the same key) and higher for
    some (over-specified least squares from scale-0.3 starts has several local optima at
    n = 400: 5 of 8 replicates improved when the test was written); best_of = 1 written out is
    the default, row for row."""
    cell = grid.Cell("s", 400, 0, 8)
    one = sweep_cell.run_cell(_multistart_config(None), cell)
    four = sweep_cell.run_cell(_multistart_config(4), cell)
    explicit = sweep_cell.run_cell(_multistart_config(1), cell)
    gain = np.asarray(four["objective"]) - np.asarray(one["objective"])
    assert np.all(gain >= -1e-12) and np.any(gain > 1e-9), gain
    for k in ("objective", "metric.D_LSE", "n_iter"):
        assert explicit[k] == one[k], k
    assert _multistart_config(None).settings[0].init.starts == 1
    random = Setting.model_validate({**_setting(8.0).model_dump(), "init": {"kind": "random"}})
    assert random.init.starts == 5
    with pytest.raises(ValueError, match="best_of applies to near_truth starts"):
        Setting.model_validate({**_setting(8.0).model_dump(),
                                "init": {"kind": "random", "best_of": 2}})


def test_a_run_directory_written_before_best_of_keeps_its_config_hash():
    """Run directories record every init field (n_init = 5 included, with near-truth starts);
    adding best_of with its default must not change their config hash, or their cells would
    no longer count as done (config_hash excludes defaults)."""
    from moestat.experiments.store import config_hash

    config = _multistart_config(None)
    recorded = config.model_dump(mode="json", exclude_none=True)
    del recorded["settings"][0]["init"]["best_of"]  # what a directory of an older version holds
    before = parse_config(recorded)
    assert recorded["settings"][0]["init"]["n_init"] == 5
    assert config_hash(before) == config_hash(config)
    assert config_hash(_multistart_config(2)) != config_hash(config)


@pytest.mark.parametrize("setting", ["distinguishable", "setting_2"])  # crc32 < 2^31, >= 2^31
@pytest.mark.parametrize("seed", [0, 2**31 + 5])
def test_replicate_keys_are_the_single_replicate_keys(setting, seed):
    """The compiled keys equal the eager fold_in chain they replaced, bit for bit (the data
    of every stored result derive from these keys), batched and one at a time."""
    import zlib

    k = jax.random.fold_in(jax.random.PRNGKey(seed), zlib.crc32(setting.encode()))
    eager = np.stack([np.asarray(jax.random.fold_in(jax.random.fold_in(k, 12345), r))
                      for r in range(3, 7)])
    batch = np.asarray(grid.replicate_keys(seed, setting, 12345, range(3, 7)))
    one = np.stack([np.asarray(grid.replicate_key(seed, setting, 12345, r))
                    for r in range(3, 7)])
    np.testing.assert_array_equal(batch, eager)
    np.testing.assert_array_equal(one, eager)
