"""Public fitting functions: compile once per (model, estimator, options), batched over
replicates (`fit/batch_layout.py`) or vmapped over restarts.

    fit(model, X, y, start)            one data set from given starting parameters
    fit_batch(model, X, y, start)      leading replicate axis on X, y, start (and weights)
    fit_random(model, X, y, key, n_init)  data-driven starts (emEM), best objective kept
    compile_batch(model, estimator, options)  the jitted program fit_batch runs (to compile it
                                       ahead, or to time it)
    best_of_starts(results)            per replicate, the start with the best objective
    bytes_per_fit(model, n, estimator, finish)  an upper estimate of one batched fit's memory

X (n_samples, n_features), y (n_samples,), weights (n_samples,) >= 0 (default ones). Default
bounds: `MixtureOfExperts.bounds(var(y))`. Estimators: "em" (mixture models), "mle" (any),
"newton" (any with at most 64 free parameters), "lse" (regression models), "sgd" (minibatch
SGD on least squares for regression models, on the likelihood for mixtures).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from moestat.compiling import jit
from moestat.errors import InputError
from moestat.fit.batch_layout import lanes_per_pass, over_lanes
from moestat.fit.bounds import on_bound, project
from moestat.fit.degeneracy import degeneracy
from moestat.fit.em import em
from moestat.fit.em_statistics import MAX_DATA_COLUMNS, data_columns
from moestat.fit.init import START_KINDS, random_start
from moestat.fit.lse import lse
from moestat.fit.lse import solver as lse_solver
from moestat.fit.mle import HESSIAN_ROWS, check_newton, mean_loglik, mle, newton
from moestat.fit.result import FitOptions, FitResult
from moestat.fit.sgd import sgd
from moestat.memory import rows_bytes
from moestat.model import MixtureOfExperts, MoEParams

ESTIMATOR_FUNCTIONS = {"em": em, "mle": mle, "newton": newton, "lse": lse, "sgd": sgd}
DEFAULT_OPTIONS = FitOptions()
NEWTON_TANGENT_ARRAYS = 16  # (P, rows, K) arrays of a Newton Hessian block (XLA: 3-12.5)


def takes_newton_steps(estimator: str, finish: str = "none") -> bool:
    """The fit forms the Newton Hessian: the `newton` estimator, or EM's Newton finish."""
    return "newton" in (estimator, finish)


def check_estimator_for(model: MixtureOfExperts, estimator: str,
                        options: FitOptions = DEFAULT_OPTIONS) -> None:
    """Raise InputError when `estimator` (with `options`) does not apply to `model`."""
    if estimator not in ESTIMATOR_FUNCTIONS:
        raise InputError(f"unknown estimator {estimator!r}; expected one of "
                         f"{', '.join(ESTIMATOR_FUNCTIONS)}")
    if estimator == "em" and model.kind == "regression":
        raise InputError("estimator 'em' needs a mixture or classification model; use 'lse' "
                         "or 'mle' for regression models")
    if estimator == "lse" and model.kind != "regression":
        raise InputError("estimator 'lse' needs a regression model (kind='regression')")
    if options.finish == "newton" and estimator != "em":
        raise InputError(f"finish 'newton' follows EM; estimator {estimator!r} has no EM phase")
    if takes_newton_steps(estimator, options.finish):
        check_newton(model, finish=estimator != "newton")


def default_bounds(model: MixtureOfExperts, y, weights):
    mu = jnp.sum(weights * y) / jnp.sum(weights)
    y_var = jnp.sum(weights * (y - mu) ** 2) / jnp.sum(weights)
    return model.bounds(jnp.maximum(y_var, 1e-300))


def fit_bounds(model, y, weights, options: FitOptions, bounds=None):
    """`bounds` (default: the data's, default_bounds) with the expert box |coef| <=
    options.expert_bound applied."""
    if bounds is None:
        bounds = default_bounds(model, y, weights)
    if options.expert_bound is not None:
        c = options.expert_bound
        bounds = (bounds[0]._replace(expert=jax.tree_util.tree_map(
                      lambda v: jnp.maximum(v, -c), bounds[0].expert)),
                  bounds[1]._replace(expert=jax.tree_util.tree_map(
                      lambda v: jnp.minimum(v, c), bounds[1].expert)))
    return bounds


def _fit_one(model, estimator, options, X, y, weights, start, bounds, limit=None):
    """Traced body: run the estimator from `start` (for at most `limit` iterations, which may
    be traced: fit/loop.py `iterate`), then final objective and flags."""
    bounds = fit_bounds(model, y, weights, options, bounds)
    start = project(model.canonicalize(start), bounds)
    params, n_iter, converged, history = ESTIMATOR_FUNCTIONS[estimator](
        model, X, y, weights, start, bounds, options, limit=limit)
    params = model.canonicalize(params)
    loglik = mean_loglik(model, params, X, y, weights)
    if model.kind == "regression" and estimator in ("lse", "sgd"):  # least squares
        objective = -jnp.sum(weights * (y - model.mean(params, X)) ** 2) / jnp.sum(weights)
    else:
        objective = loglik
    flags = degeneracy(model, params, X, weights, bounds, objective)
    return FitResult(params, objective, loglik, n_iter, converged & ~flags.nonfinite,
                     on_bound(params, bounds), flags.floored, flags.empty, flags.separated,
                     flags.degenerate, history)


def _one_lane_at_a_time(model, estimator, options) -> bool:
    """Least squares by L-BFGS on the CPU runs a batch's lanes one at a time (fit/lse.py); a
    vmapped batch's reason to split (lanes waiting for the slowest) is then gone too."""
    return (estimator == "lse" and jax.default_backend() == "cpu"
            and lse_solver(model, options) == "lbfgs")


@functools.lru_cache(maxsize=128)
def _compiled(model, estimator, options, batched: bool, lanes: int | None = None):
    fn = functools.partial(_fit_one, model, estimator, options)
    if batched and lanes is None and _one_lane_at_a_time(model, estimator, options):
        lanes = 1
    if batched:
        fn = over_lanes(fn, lanes)
    return jit(fn)


def compile_batch(model: MixtureOfExperts, estimator: str = "em",
                  options: FitOptions = DEFAULT_OPTIONS, *, split_after: int | None = None,
                  lanes_per_pass: int | None = None):
    """The jitted batched fit `program(X (R, n, d), y (R, n), weights (R, n), start (leading
    axis R), bounds or None) -> FitResult` that `fit_batch` runs first: every lane for at most
    `split_after` iterations (default max_iter). `lanes_per_pass` fixes how many lanes run
    vmapped together on the CPU (default: fit/batch_layout.py's choice). `program.lower(*shapes)
    .compile()` compiles it ahead (fit_batch then finds it compiled)."""
    check_estimator_for(model, estimator, options)
    if _one_lane_at_a_time(model, estimator, options):
        split_after = None
    if split_after is not None and split_after < options.max_iter:
        options = dataclasses.replace(options, max_iter=int(split_after))
    return _compiled(model, estimator, options, True, lanes_per_pass)


def _prepare(model, estimator, X, y, weights, options: FitOptions = DEFAULT_OPTIONS):
    check_estimator_for(model, estimator, options)
    X = jnp.asarray(X, dtype=jnp.float64)
    y = jnp.asarray(y, dtype=jnp.float64)
    if weights is None:
        weights = jnp.ones(y.shape, dtype=jnp.float64)
    return X, y, jnp.asarray(weights, dtype=jnp.float64)


def fit(model: MixtureOfExperts, X, y, start: MoEParams, *, estimator: str = "em",
        weights=None, bounds=None, options: FitOptions = DEFAULT_OPTIONS) -> FitResult:
    """Fit one data set from `start`; returns a FitResult."""
    X, y, weights = _prepare(model, estimator, X, y, weights, options)
    return _compiled(model, estimator, options, False)(X, y, weights, start, bounds)


def fit_batch(model: MixtureOfExperts, X, y, start: MoEParams, *, estimator: str = "em",
              weights=None, bounds=None, options: FitOptions = DEFAULT_OPTIONS,
              split_after: int | None = None) -> FitResult:
    """Fit R data sets at once: X (R, n, d), y (R, n), start with leading axis R. One
    vmapped, jitted computation; the FitResult leaves carry the replicate axis.

    A vmapped loop runs until its slowest replicate stops, so one slow fit makes the whole
    batch pay for max_iter iterations. `split_after=m` runs every replicate for at most m
    iterations, then continues only the unconverged ones (a smaller batch, padded to a power
    of two to bound recompilation) from where they stopped, splitting again after 2m, 4m, ...
    iterations until the budget max_iter is spent; n_iter and history join up. Exact for EM
    (its state is the parameters); least squares and direct MLE restart their damping /
    curvature memory at a split (same stopping rule, a few more iterations). A continuing fit
    may take one extra iteration (its first objective has no predecessor to compare with).
    Least squares by L-BFGS on the CPU runs lane by lane and ignores `split_after`.
    """
    X, y, weights = _prepare(model, estimator, X, y, weights, options)
    if _one_lane_at_a_time(model, estimator, options):
        split_after = None
    first = compile_batch(model, estimator, options, split_after=split_after)
    if split_after is None or split_after >= options.max_iter:
        return first(X, y, weights, start, bounds)
    r1 = _pad_history(first(X, y, weights, start, bounds), options.max_iter)
    go = np.flatnonzero(~np.asarray(r1.converged) & (np.asarray(r1.n_iter) == split_after)
                        & np.isfinite(np.asarray(r1.objective)))  # NumPy: no eager programs
    if go.size == 0:
        return r1
    lanes = np.concatenate([go, np.full(_next_pow2(go.size) - go.size, go[0])])
    rest = dataclasses.replace(options, max_iter=options.max_iter - int(split_after))

    def take(a):
        return a[lanes]

    r2 = fit_batch(model, take(X), take(y), jax.tree_util.tree_map(take, r1.params),
                   estimator=estimator, weights=take(weights), bounds=bounds, options=rest,
                   split_after=2 * split_after)  # the next split twice as late
    r2 = r2._replace(n_iter=r2.n_iter + split_after,
                     history=jnp.concatenate([r1.history[lanes, :split_after], r2.history],
                                             axis=1))
    idx = jnp.asarray(go)
    return jax.tree_util.tree_map(lambda a, c: a.at[idx].set(c[: go.size]), r1, r2)


def _pad_history(r: FitResult, max_iter: int) -> FitResult:
    """History padded with NaN to max_iter columns (in NumPy: an eager jnp.pad would compile
    one more program per shape)."""
    pad = max_iter - r.history.shape[-1]
    return r._replace(history=jnp.asarray(np.pad(np.asarray(r.history), ((0, 0), (0, pad)),
                                                 constant_values=np.nan)))


def _next_pow2(k: int) -> int:
    return 1 << (int(k) - 1).bit_length()


EXPLORE_FACTOR = 5  # emEM: short runs per start that is run to convergence
SHORT_ITERATIONS = 10  # emEM: iterations of each short run


def _over_starts(f, starts, n_rows: int):
    """f(one start) over a leading start axis: vmapped, or on the CPU in groups of
    lanes_per_pass starts (lax.map) so that memory stays bounded at large n."""
    n_starts = jax.tree_util.tree_leaves(starts)[0].shape[0]
    group = lanes_per_pass(n_starts, n_rows)
    if n_starts == 1:  # unbatched: a vmapped while loop of one lane runs ~1.7x slower
        return jax.tree_util.tree_map(lambda a: a[None],
                                      f(jax.tree_util.tree_map(lambda a: a[0], starts)))
    if group >= n_starts:
        return jax.vmap(f)(starts)
    return jax.lax.map(f, starts, batch_size=group) if group > 1 else jax.lax.map(f, starts)


def _drawn_starts(model, options, n_starts: int):
    """draw(X, y, weights, key, bounds=None) -> n_starts data-driven starting parameters
    (leading axis), of every kind in turn (fit/init.py START_KINDS)."""

    def draw(X, y, weights, key, bounds=None):
        b = default_bounds(model, y, weights) if bounds is None else bounds
        seeds = (jax.random.split(key, n_starts), jnp.arange(n_starts) % len(START_KINDS))
        return _over_starts(lambda s: random_start(model, X, y, weights, s[0], b, options,
                                                   s[1]), seeds, X.shape[0])

    return draw


def _runs(model, estimator, options):
    """run(X, y, weights, starts, limit, bounds=None) -> FitResult with a leading start axis:
    each start run for at most `limit` iterations (<= options.max_iter, traced: one compiled
    program serves emEM's short runs and its runs to convergence)."""

    def run(X, y, weights, starts, limit, bounds=None):
        b = default_bounds(model, y, weights) if bounds is None else bounds
        return _over_starts(lambda s: _fit_one(model, estimator, options, X, y, weights, s, b,
                                               limit), starts, X.shape[0])

    return run


def best_short_runs(trial: FitResult, n_keep: int, xp=np):
    """The parameters of the n_keep short runs with the best objectives (ties: the first), as
    those runs left them — the short-run phase of emEM (Biernacki et al. 2003). xp: the array
    module (`best_of_starts`)."""
    kept = xp.argsort(-_finite_score(trial.objective, xp), stable=True)[:n_keep]
    return jax.tree_util.tree_map(lambda a: a[kept], trial.params)


def _random_fits(model, estimator, options, n_init: int, explore: int):
    """run(X, y, weights, key, bounds=None) -> (best FitResult, objectives (n_init,)), emEM in
    one program: explore * n_init drawn starts (`_drawn_starts`), each run SHORT_ITERATIONS
    iterations, the n_init best (`best_short_runs`; explore = 1: the drawn starts themselves)
    run to convergence (`_runs`)."""
    draw = _drawn_starts(model, options, explore * n_init)
    runs = _runs(model, estimator, options)

    def run(X, y, weights, key, bounds=None):
        starts = draw(X, y, weights, key, bounds)
        if explore > 1:
            trial = runs(X, y, weights, starts, min(SHORT_ITERATIONS, options.max_iter), bounds)
            starts = best_short_runs(trial, n_init, jnp)
        results = runs(X, y, weights, starts, options.max_iter, bounds)
        return best_of_starts(results, jnp), results.objective

    return run


@functools.lru_cache(maxsize=128)
def _compiled_random(model, estimator, options, n_init: int, explore: int,
                     profile: str = "fit"):
    return jit(_random_fits(model, estimator, options, n_init, explore), profile)


def fit_random(model: MixtureOfExperts, X, y, key, n_init: int = 5, *, estimator: str = "em",
               weights=None, bounds=None, options: FitOptions = DEFAULT_OPTIONS,
               explore: int = EXPLORE_FACTOR, program_cache: str | None = None,
               profile: str = "fit", while_compiling=None):
    """Data-driven random starts, emEM-style (`_random_fits`; explore = 1: n_init starts,
    each run to convergence); returns (best FitResult, objectives of the n_init converged runs
    (n_init,)). program_cache: a directory where the compiled programs are kept between
    processes (moestat/program_store.py; default bounds only); profile: the compile options
    (moestat/compiling.py); while_compiling: called (no arguments) once the fit's programs
    are prepared, before they run — the caller's work while they compile."""
    if n_init < 1:
        raise InputError(f"n_init must be >= 1, got {n_init}")
    if explore < 1:
        raise InputError(f"explore must be >= 1, got {explore}")
    X, y, weights = _prepare(model, estimator, X, y, weights, options)
    static = (model, estimator, options, int(n_init), int(explore))
    if program_cache is not None and bounds is None:
        return _stored_random_fits(program_cache, static, profile, X, y, weights, key,
                                   while_compiling)
    if while_compiling is not None:  # (nothing prepared: jit compiles at the call)
        while_compiling()
    return _compiled_random(*static, profile)(X, y, weights, key, bounds)


def _stored_random_fits(directory: str, static, profile: str, X, y, weights, key,
                        while_compiling=None):
    """`fit_random` by the program store (moestat/program_store.py), as two programs: the
    drawn starts, and the runs (`_runs`), called explore times for the short runs (n_init
    starts each) and once to convergence, the short runs' best chosen on the host between.
    Both are prepared before any runs, so that the second is traced while the first compiles
    and they compile side by side; one EM loop is compiled where `_random_fits` compiles two
    (docs/performance.md: a first fit ~1 s faster, a fit of 1e5 rows no slower)."""
    from moestat.program_store import call_stored, prepare

    model, estimator, options, n_init, explore = static

    def shaped(n_starts):
        return jax.tree_util.tree_map(
            lambda a: jax.ShapeDtypeStruct((n_starts,) + a.shape, jnp.float64), model.shapes())

    draw = ("drawn_starts", (model, options, explore * n_init),
            lambda: _drawn_starts(model, options, explore * n_init))
    runs = ("runs", static[:3], lambda: _runs(model, estimator, options))
    limit = np.asarray(options.max_iter)
    prepare(directory, *draw, X, y, weights, key, profile=profile)
    prepare(directory, *runs, X, y, weights, shaped(n_init), limit, profile=profile)
    if while_compiling is not None:
        while_compiling()
    starts = jax.device_get(call_stored(directory, *draw, X, y, weights, key, profile=profile))
    if explore > 1:  # the short runs, n_init starts at a time, by the same program
        short = np.asarray(min(SHORT_ITERATIONS, options.max_iter))
        trials = [jax.device_get(call_stored(
            directory, *runs, X, y, weights,
            jax.tree_util.tree_map(lambda a, g=g: a[g * n_init:(g + 1) * n_init], starts),
            short, profile=profile)) for g in range(explore)]
        trial = jax.tree_util.tree_map(lambda *a: np.concatenate(a), *trials)
        starts = best_short_runs(trial, n_init)
    results = jax.device_get(call_stored(directory, *runs, X, y, weights, starts, limit,
                                         profile=profile))
    return best_of_starts(results), results.objective


def _finite_score(objective, xp):
    """The objective with non-finite values at -inf (never chosen over a finite one)."""
    return xp.where(xp.isfinite(objective), objective, -xp.inf)


def best_of_starts(results: FitResult, xp=np) -> FitResult:
    """Fits of the same data sets from several starts, stacked along a leading start axis
    (objective (S,) or (S, R)): per data set, the fit with the largest finite objective (the
    first on ties). `xp` is the array module: NumPy on the host (no eager device programs),
    jax.numpy inside a traced function."""
    best = xp.argmax(_finite_score(results.objective, xp), axis=0)  # () or (R,)

    def pick(a):
        index = best.reshape((1,) + best.shape + (1,) * (a.ndim - 1 - best.ndim))
        return xp.take_along_axis(a, index, axis=0)[0]

    return jax.tree_util.tree_map(pick, results)


def bytes_per_fit(model: MixtureOfExperts, n: int, estimator: str = "em",
                  finish: str = "none") -> int:
    """An estimate, on the high side, of one replicate's peak memory in a batched fit of n rows
    (float64): the data (n, d + 1), about 8 arrays of (n, K) (responsibilities, log weights,
    log joint, ...), the gate Hessian's (n, K^2 m) product, a least-squares Jacobian (n, P)
    and, for the one-pass EM, its data statistics D (n, n_D) twice (formed, then read); with
    Newton steps (estimator "newton" or finish "newton") the Hessian's forward-over-reverse
    pass over one block of rows: NEWTON_TANGENT_ARRAYS arrays of (P, rows, K).
    Measured: a regression fit with P = 8 at n = 1e6 estimated 0.44 GB, resident ~0.28 GB;
    softmax + linear experts at n = 1e5, d = 1: 0.06 GB (XLA's own analysis 0.03), d = 32:
    1.4 GB (1.0); shared + routed ReLU experts (K = 5, P = 20) at n = 1e5: EM 0.09 GB (XLA
    0.10), finished by Newton 0.20 GB (XLA 0.16; at n = 1e4 0.11 GB, XLA 0.09)."""
    d, K, P = model.n_features, model.n_components, model.n_free_parameters()
    m = len(model.gate.logit_monomials(d)) if model.gate.logit_monomials else d + 1
    n_D = data_columns(model)
    n_D = n_D if n_D <= MAX_DATA_COLUMNS else 0  # beyond the bound EM runs per sample
    rows = rows_bytes(n, d, K) + 8 * n * (K * K * m + P + 2 * n_D)
    if takes_newton_steps(estimator, finish):
        rows += 8 * NEWTON_TANGENT_ARRAYS * P * K * min(n, HESSIAN_ROWS)
    return rows
