"""Compile options (moestat/compiling.py): accepted by this jaxlib on the CPU, ignored when
XLA does not know them, and the programs compiled with them compute what XLA's defaults do —
bit for bit for the sampler, the starts and the EM fit (the reason they may be used)."""

from __future__ import annotations

import zlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from moestat import compiling
from moestat.experiments import simulation as sim
from moestat.experiments.cell import SPLIT_AFTER
from moestat.experiments.config import XDist, parse_config
from moestat.experiments.grid import replicate_keys
from moestat.experiments.settings import build
from moestat.fit import compile_batch


@pytest.mark.parametrize("profile", sorted(compiling.PROFILES))
def test_this_jaxlib_accepts_the_options_on_the_cpu(profile):
    assert jax.default_backend() == "cpu"
    assert compiling.compile_options(profile) == compiling.PROFILES[profile]
    f = compiling.jit(lambda x: 2.0 * x, profile)
    assert float(f(3.0)) == 6.0


def test_options_xla_does_not_know_fall_back_to_its_defaults(monkeypatch):
    monkeypatch.setitem(compiling.PROFILES, "bogus", {"xla_no_such_option_anywhere": True})
    try:
        assert compiling.compile_options("bogus") is None
        assert float(compiling.jit(lambda x: x + 1.0, "bogus")(1.0)) == 2.0
    finally:
        compiling.compile_options.cache_clear()


def test_lazy_jit_builds_one_jitted_function_at_the_first_call():
    @compiling.lazy_jit(profile="data", static_argnums=1)
    def scaled(x, k: int):
        return k * x

    assert float(scaled(2.0, 3)) == 6.0 and float(scaled(4.0, 3)) == 12.0
    assert scaled.jitted() is scaled.jitted()
    assert scaled.jitted()._cache_size() == 1


def _contaminated():
    return parse_config({
        "name": "opts", "seed": 5, "replicates": 4, "block": 4, "n": [1500, 3000],
        "metrics": ["exp_tau", "beta", "eta", "nu"],
        "settings": [{
            "name": "c", "gate": "contaminated", "expert": "ridge_nobias:tanh",
            "noise": "gaussian", "n_experts": 1, "n_features": 3,
            "x": {"dist": "normal"}, "init": {"kind": "near_truth", "scale": 0.1},
            "frozen": {"expert": "ridge_nobias:tanh", "noise": "laplace", "var": 0.001,
                       "params": {"eta": [1.0, 0.0, 0.0]}},
            "truth": {"gate.beta": [0.5, 0.5, 0.5], "gate.tau": 1.0,
                      "expert.eta": [[-1.0, 0.0, 0.0]], "noise.var": [0.001]}}]})


def _default_xla(fn):
    """The same traced function compiled with XLA's default options."""
    return jax.jit(fn._fun)


def test_sampler_starts_and_fit_equal_xla_defaults_bit_for_bit():
    """The programs a contaminated sweep compiles with moestat's options (sampler: "data";
    starts: "small"; EM fit: "fit") return exactly what the default-compiled programs return."""
    config = _contaminated()
    setting = config.settings[0]
    models = build(setting)
    truth = models.truth(1500)
    chunk, start = sim.simulators(setting.model_dump_json())
    kd, ki = sim._split_keys(replicate_keys(5, "c", 1500, range(4)))
    for ours, args in [(chunk, (kd, truth, 1)), (start, (ki, truth))]:
        a = jax.tree_util.tree_leaves(jax.device_get(ours(*args)))
        b = jax.tree_util.tree_leaves(jax.device_get(_default_xla(ours)(*args)))
        assert all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))
    X, y, s0, _ = sim.simulate(models, replicate_keys(5, "c", 1500, range(4)), truth, 1500)
    program = compile_batch(models.fit_model, "em", models.options, split_after=SPLIT_AFTER)
    w = jnp.ones(y.shape)
    ours = jax.device_get(program(X, y, w, s0, None))
    default = jax.device_get(_default_xla(program)(X, y, w, s0, None))
    assert np.all(ours.converged)
    for u, v in zip(jax.tree_util.tree_leaves(ours), jax.tree_util.tree_leaves(default),
                    strict=True):
        np.testing.assert_array_equal(u, v)


def test_small_programs_equal_the_eager_draws_bit_for_bit():
    """The "small" profile's key and held-out x programs return exactly the keys and draws the
    same jax.random calls give run eagerly (each op compiled with XLA's defaults)."""
    keys = replicate_keys(11, "c", 2500, [0, 3, 7])
    kds, kis = sim._split_keys(keys)
    for i, r in enumerate([0, 3, 7]):
        eager = jax.random.fold_in(jax.random.fold_in(jax.random.fold_in(
            jax.random.PRNGKey(11), zlib.crc32(b"c")), 2500), r)
        np.testing.assert_array_equal(np.asarray(keys[i]), np.asarray(eager))
        kd, ki = jax.random.split(eager)
        np.testing.assert_array_equal(np.asarray(kds[i]), np.asarray(kd))
        np.testing.assert_array_equal(np.asarray(kis[i]), np.asarray(ki))
    for x in ({"dist": "normal"}, {"dist": "uniform", "low": -1.0, "high": 2.0}):
        xdist = XDist.model_validate(x)
        ours = sim._draw_eval_points(2**40 + 3, xdist.model_dump_json(), 4)
        key = jax.random.fold_in(jax.random.PRNGKey(2**40 + 3), zlib.crc32(b"eval"))
        np.testing.assert_array_equal(np.asarray(ours),
                                      np.asarray(sim.draw_x(xdist, key, sim.N_EVAL, 4)))
