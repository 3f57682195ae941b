"""Shared set-up of the stop 19 probes: one block of the contaminated full preset.

    setting, built, truth, X, y, w, start, program = contaminated_block(n, replicates)

replicates 0 .. R-1 of size n (seed 0), unpadded, weights 1; `program` the fit program the
sweep runs first (api.first_stage), compiled with moestat's options."""

import jax.numpy as jnp

from moestat.experiments import sweep
from moestat.experiments.config import load_config
from moestat.fit import api


def contaminated_block(n: int, replicates: int = 20):
    setting = load_config("experiments/contaminated_distinguishable.toml").settings[0]
    built = sweep.build(setting)
    truth = built.truth(n)
    keys = sweep.replicate_keys(0, setting.name, n, range(replicates))
    X, y, start, _ = sweep.simulate(built, keys, truth, n)
    program = api.first_stage(built.fit_model, setting.estimator, sweep.fit_options(setting),
                              sweep.SPLIT_AFTER)
    return setting, built, truth, X, y, jnp.ones(y.shape), start, program
