"""Running one cell: simulate its replicates, fit them in one batched program, measure.

Inside a cell the replicates are one batched, jitted fit followed by vmapped metrics; the
sampler, the starts and the metrics compile once per setting, the fit once per (setting,
padded size): the n of a near-truth setting are padded with zero-weight rows to a few shared
sizes (moestat/padding.py). Random (data-driven) starts draw from the rows they are given, so
those settings fit exactly n rows.
"""

from __future__ import annotations

import threading
import time

import jax
import jax.numpy as jnp
import numpy as np

from moestat.experiments import resources
from moestat.experiments.config import ExperimentConfig, Setting
from moestat.experiments.grid import Cell, replicate_keys
from moestat.experiments.metrics import metric_evaluator, reference_params
from moestat.experiments.rows import fit_rows
from moestat.experiments.settings import SettingModels, built, truth_at
from moestat.experiments.simulation import eval_points, padding_weights, simulate, simulators
from moestat.fit import FitResult, best_of_starts, compile_batch, fit_batch, fit_random
from moestat.model import MoEParams
from moestat.padding import padded_rows

SPLIT_AFTER = 50  # replicates still running after 50, 100, 200, ... iterations continue in a
# smaller batch (fit_batch): a block no longer waits for its slowest fit at full width


def run_cell(config: ExperimentConfig, cell: Cell) -> dict[str, list]:
    """Fit every replicate of the cell and return its rows (rows.py). A cell larger than the
    memory budget runs in consecutive replicate blocks (the same rows, floats to rounding)."""
    setting = next(s for s in config.settings if s.name == cell.setting)
    size = fitted_rows(config, setting, cell.n)
    text = setting.model_dump_json()
    resources.limit_live_executables(text, size)
    models, truth = built(text), truth_at(text, cell.n)
    rows: dict[str, list] = {}
    for block in resources.replicate_blocks(cell.replicates, models.fit_model, size,
                                              setting.estimator, setting.finish):
        for k, v in _run_replicates(config, models, truth, cell.n, block, size).items():
            rows.setdefault(k, []).extend(v)
    return rows


def fitted_rows(config: ExperimentConfig, setting: Setting, n: int) -> int:
    """The padded size the cells of size n fit at: near-truth settings share programs across
    the n grid (padding.padded_rows); random starts fit exactly n rows."""
    if setting.init.kind != "near_truth":
        return n
    return padded_rows(config.n_values(), config.replicates)[n]


def near_truth_starts(models: SettingModels, start: MoEParams, init_keys, truth):
    """The near-truth starts of a block: `start` (from init key k_r), then, for init.best_of > 1,
    starts j = 1, 2, ... drawn from fold_in(k_r, j) — the first start and hence a single-start
    run's results do not depend on best_of."""
    yield start
    _, start_fn = simulators(models.setting.model_dump_json())
    fold = jax.vmap(jax.random.fold_in, in_axes=(0, None))
    for j in range(1, models.setting.init.starts):
        yield start_fn(fold(init_keys, j), truth)


_FIT_PROGRAMS: set = set()  # (setting json, R, rows) whose fit program this process compiled
resources.on_clear(_FIT_PROGRAMS.clear)


def _compile_fit_meanwhile(models: SettingModels, truth, R: int, rows: int):
    """Compile a near-truth block's fit program on a helper thread while this thread
    simulates its data (the sampler and start programs compile here meanwhile: one XLA
    compile uses about two threads, so the compiles share the machine). Returns the thread to
    join before fitting, or None when the program is compiled already (or nothing to compile).
    The program is the one fit_batch then finds compiled (an AOT compile fills jit's cache)."""
    setting = models.setting
    key = (setting.model_dump_json(), R, rows)
    if setting.init.kind != "near_truth" or key in _FIT_PROGRAMS:
        return None
    _FIT_PROGRAMS.add(key)
    _, start_fn = simulators(key[0])  # looked up here: both threads get the same programs
    program = compile_batch(models.fit_model, setting.estimator, models.options,
                            split_after=SPLIT_AFTER)
    keys = jax.ShapeDtypeStruct((R, 2), jnp.uint32)
    f64 = jnp.float64
    specs = (jax.ShapeDtypeStruct((R, rows, setting.n_features), f64),
             jax.ShapeDtypeStruct((R, rows), f64), jax.ShapeDtypeStruct((R, rows), f64),
             jax.eval_shape(start_fn, keys, truth), None)

    def compile_program():
        try:
            program.lower(*specs).compile()
        except Exception:  # noqa: BLE001 - the fit itself compiles again and reports it
            _FIT_PROGRAMS.discard(key)

    thread = threading.Thread(target=compile_program, name="moestat-compile", daemon=True)
    thread.start()
    return thread


def _stack_starts(results) -> FitResult:
    """One start's FitResult as is; several stacked on the host along a leading start axis."""
    results = list(results)
    if len(results) == 1:
        return results[0]
    host = [jax.device_get(r) for r in results]
    return best_of_starts(jax.tree_util.tree_map(lambda *a: np.stack(a), *host))


def _run_replicates(config, models: SettingModels, truth, n: int, reps: list[int],
                    size: int) -> dict[str, list]:
    """Fit replicates `reps` of size n, padded to `size` rows of which the last size - n
    have weight 0 (near-truth settings only; fitted_rows)."""
    setting = models.setting
    keys = replicate_keys(config.seed, setting.data_stream, n, reps)
    options = models.options
    compiling = _compile_fit_meanwhile(models, truth, len(reps), size)
    X, y, start, init_keys = simulate(models, keys, truth, n, size)
    if compiling is not None:
        compiling.join()
    t0 = time.perf_counter()
    if setting.init.kind == "near_truth":
        weights = padding_weights(n, y.shape)
        result = _stack_starts(
            fit_batch(models.fit_model, X, y, s0, estimator=setting.estimator, options=options,
                      weights=weights, split_after=SPLIT_AFTER)
            for s0 in near_truth_starts(models, start, init_keys, truth))
    else:
        parts = [fit_random(models.fit_model, X[i], y[i], init_keys[i], setting.init.starts,
                            estimator=setting.estimator, options=options)[0]
                 for i in range(len(reps))]
        result = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *parts)
    seconds = (time.perf_counter() - t0) / len(reps)
    names = config.metrics_for(setting.name)
    evaluator = metric_evaluator(setting.model_dump_json(), tuple(names))
    reference, points = reference_params(setting, truth, n), eval_points(config.seed, setting)
    metrics = jax.device_get(evaluator(result.params, reference, truth, points))
    start_metrics = (None if start is None
                     else jax.device_get(evaluator(start, reference, truth, points)))
    result = jax.device_get(result)
    return fit_rows(config, setting.name, n, reps, result, metrics, seconds, start_metrics)
