"""From a validated config to cells, and running one cell.

A cell is (setting, n, block of replicates). Data and initialisation of replicate r depend only
on (root seed, setting name, n, r):

    key(r) = fold_in(fold_in(fold_in(PRNGKey(seed), crc32(setting)), n), r)
    data key, init key = split(key(r));  rows in chunks j of CHUNK from fold_in(data key, j)

so results are identical whatever the backend, worker count or execution order. Inside a cell
the replicates are one vmapped, jitted fit followed by vmapped metrics; the sampler, the starts
and the metrics compile once per setting, the fit once per (setting, padded size): the n of a
near-truth setting are padded with zero-weight rows to a few shared sizes
(experiments/padding.py).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import threading
import time
import zlib
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from moestat import __version__
from moestat import losses as L
from moestat.compiling import jit, lazy_jit
from moestat.errors import InputError
from moestat.experiments.config import ExperimentConfig, NDependent, Setting, XDist
from moestat.experiments.padding import padded_rows
from moestat.fit import FitOptions, fit, fit_batch, fit_random, near_truth
from moestat.fit.api import first_stage
from moestat.fit.em_stats import data_columns
from moestat.fit.result import FitResult
from moestat.model import FrozenExpert, MixtureOfExperts, MoEParams
from moestat.registry import make_gate

N_EVAL = 1000  # held-out x for the density / regression error


@dataclass(frozen=True)
class Cell:
    setting: str
    n: int
    start: int  # first replicate index
    stop: int  # one past the last

    @property
    def label(self) -> str:
        return f"{self.setting}/n={self.n}/r={self.start}-{self.stop - 1}"


def cells(config: ExperimentConfig) -> list[Cell]:
    """Every cell of the sweep, settings in config order, n ascending, replicate blocks."""
    out = []
    for s in config.settings:
        for n in config.n_values():
            for a in range(0, config.replicates, config.block):
                out.append(Cell(s.name, n, a, min(a + config.block, config.replicates)))
    return out


# ---- models and truths -----------------------------------------------------------------
@dataclass(frozen=True)
class Built:
    setting: Setting
    fit_model: MixtureOfExperts
    truth_model: MixtureOfExperts

    def truth(self, n: int) -> MoEParams:
        named = {}
        for name, v in self.setting.truth.items():
            if isinstance(v, NDependent):
                named[name] = np.asarray(v.value, float) + np.asarray(v.plus, float) * \
                    float(n) ** v.power
            else:
                named[name] = np.asarray(v, float)
        return self.truth_model.canonicalize(self.truth_model.from_named(named))


def build(setting: Setting) -> Built:
    """Models of a setting (fitted with n_experts; truth with k* from its parameters)."""
    frozen = None
    if setting.frozen is not None:
        f = setting.frozen
        frozen = FrozenExpert.create(f.expert, f.noise, f.params, f.var)
    fit_model = MixtureOfExperts.create(setting.gate, setting.expert, setting.noise,
                                        n_experts=setting.n_experts,
                                        n_features=setting.n_features, kind=setting.kind,
                                        frozen=frozen)
    k_true = None
    for name, v in setting.truth.items():
        if name.startswith("expert."):
            arr = np.asarray(v.value if isinstance(v, NDependent) else v, float)
            k_true = arr.shape[0] if arr.ndim else None
            break
    if k_true is None:
        raise InputError(f"settings.{setting.name}.truth: expert parameters with one row per "
                         "true expert are required")
    truth_model = dataclasses.replace(fit_model, n_experts=k_true)
    if setting.truth_gate is not None:
        truth_model = dataclasses.replace(truth_model, gate=make_gate(setting.truth_gate))
        if truth_model.gate.Params != fit_model.gate.Params:
            raise InputError(f"settings.{setting.name}.truth_gate: {setting.truth_gate!r} has "
                             f"other parameters than the fitted gate {setting.gate!r}")
    built = Built(setting, fit_model, truth_model)
    try:
        built.truth(1000)
    except (ValueError, TypeError) as e:
        raise InputError(f"settings.{setting.name}.truth: {str(e).splitlines()[0]}") from None
    return built


def available_metrics(built: Built) -> list[str]:
    m = built.fit_model
    if m.frozen is not None:
        names = ["exp_tau", "beta"] if m.gate.name == "contaminated" else ["lambda"]
        names += ["eta", "nu"]
        if m.expert.name == "linear":
            names += ["a", "b"]
    else:
        names = ["D1", "D2", "D_LSE", "D_r1", "D_r2", "D_r3", "D_r4", "beta0_weight"]
        blocks = L.atom_blocks(m, m.zeros())
        for b in blocks:
            names += [b, f"{b}@singleton", f"{b}@overfitted"]
        if "tau" in m.gate.Params._fields:
            names.append("tau")
        if m.gate.name == "temperature_softmax":  # scale-invariant: see L.to_truth_temperature
            names += [x.replace("@", L.SCALED + "@") if "@" in x else x + L.SCALED
                      for x in names if x.startswith(("D", "beta1"))]
    if m.kind == "regression":
        names += ["l2"] + ([] if m.frozen is not None else list(CELL_L2))
    else:
        names.append("hellinger")
    return names


CELL_L2 = ("cell_l2", "cell_l2@singleton", "cell_l2@overfitted")  # compared with the truth


def check_metrics(config: ExperimentConfig) -> None:
    for s in config.settings:
        avail = available_metrics(build(s))
        bad = [x for x in config.metrics_for(s.name) if x not in avail]
        if bad:
            raise InputError(f"metrics {bad} are not defined for setting {s.name!r}; "
                             f"available: {avail}")


def metric_fn(built: Built, metrics: list[str]):
    """(fitted params, reference, truth, X_eval (N_EVAL, d)) -> {metric: scalar}, for vmapping
    over replicates. Parameter losses compare the fit with `reference` (the truth, or its best
    k-atom approximation); density / regression errors compare it with the truth."""
    m, tm = built.fit_model, built.truth_model

    def voronoi_and_parameters(fitted, truth, names):
        out = {}
        for name in names:
            if name == "D1":
                out[name] = L.d1(m, fitted, truth)
            elif name == "D2":
                out[name] = L.d2(m, fitted, truth)
            elif name == "D_LSE":
                out[name] = L.d_lse(m, fitted, truth)
            elif name.startswith("D_r"):
                out[name] = L.d_r(m, fitted, truth, float(name[3:]))
        if any(x not in out for x in names):
            out.update(L.parameter_errors(m, fitted, truth))
        return out

    def fn(fitted, reference, truth, X_eval):
        out = {}
        if m.frozen is not None:
            out.update(L.contaminated_errors(m, fitted, reference))
        else:
            plain = [x for x in metrics if x not in ("hellinger", "l2", *CELL_L2)
                     and L.SCALED not in x]
            scaled = [x for x in metrics if L.SCALED in x]
            if plain:
                out.update(voronoi_and_parameters(fitted, reference, plain))
            if scaled:
                base = voronoi_and_parameters(L.to_truth_temperature(m, fitted, reference),
                                              reference,
                                              [x.replace(L.SCALED, "") for x in scaled])
                out.update({x: base[x.replace(L.SCALED, "")] for x in scaled})
        if "hellinger" in metrics:
            out["hellinger"] = L.hellinger(m, fitted, truth, X_eval, truth_model=tm)
        if "l2" in metrics:
            out["l2"] = L.l2_error(m, fitted, truth, X_eval, truth_model=tm)
        if any(x in metrics for x in CELL_L2):
            out.update(L.cell_l2_errors(m, fitted, truth, X_eval, truth_model=tm))
        return {k: out[k] for k in metrics}

    return fn


# ---- seeds and data ------------------------------------------------------------------------
def replicate_key(seed: int, setting: str, n: int, r: int):
    """fold_in(fold_in(fold_in(PRNGKey(seed), crc32(setting)), n), r): replicate r's key."""
    return replicate_keys(seed, setting, n, [r])[0]


def replicate_keys(seed: int, setting: str, n: int, reps) -> jax.Array:
    """replicate_key for each replicate index in `reps`, shape (R, 2) (one compiled program
    for every seed, setting and n: ~0.1 ms instead of ~2 ms per replicate eagerly)."""
    return _replicate_keys(seed, zlib.crc32(setting.encode()), n,
                           np.asarray(list(reps), np.int64))


@lazy_jit(profile="small")
def _replicate_keys(seed, setting_crc, n, reps):
    k = jax.random.fold_in(jax.random.PRNGKey(seed), setting_crc)
    return jax.vmap(lambda r: jax.random.fold_in(jax.random.fold_in(k, n), r))(reps)


def draw_x(xdist, key, n: int, d: int):
    if xdist.dist == "uniform":
        return jax.random.uniform(key, (n, d), minval=xdist.low, maxval=xdist.high)
    return jax.random.normal(key, (n, d))


CHUNK = 4096  # rows drawn per compiled sampler call


def simulate(built: Built, keys, truth: MoEParams, n: int, rows: int | None = None):
    """Replicate data X (R, rows, d), y (R, rows) and starts from keys (R,) (replicate keys);
    rows defaults to n.

    Replicate r's data key kd and init key ki are split(key_r); rows come in chunks of CHUNK:
    chunk j is drawn from fold_in(kd, j) by one sampler compiled per setting (not per n: every
    n reuses it; compiling the threefry sampler costs ~2 s). Only the chunks covering the
    first n rows are drawn; rows n + 1 .. rows (padding to a shared size, weight 0 in the fit:
    experiments/padding.py) repeat rows 1, 2, ... cyclically, so they are finite wherever the
    data are and cost no sampling. Near-truth starts come from ki."""
    rows = n if rows is None else rows
    if not 1 <= n <= rows:
        raise ValueError(f"simulate needs 1 <= n <= rows, got n={n}, rows={rows}")
    setting_json = built.setting.model_dump_json()
    sample_chunk, start_fn = _simulators(setting_json)
    kd, ki = _split_keys(keys)
    X = y = None
    for j in range(-(-n // CHUNK)):
        Xj, yj = sample_chunk(kd, truth, j)
        if X is None:
            X, y = _buffers(Xj, yj, -(-rows // CHUNK) * CHUNK)
        X, y = _place(X, y, Xj, yj, j * CHUNK)
    X, y = _cyclic_rows(X, y, n, rows)
    start = start_fn(ki, truth) if start_fn is not None else None
    return X, y, start, ki


@lazy_jit(profile="small")
def _split_keys(keys):
    kd, ki = jax.vmap(jax.random.split)(keys).transpose(1, 0, 2)
    return kd, ki


@lazy_jit(profile="data", static_argnums=2)
def _buffers(Xj, yj, capacity: int):
    """Zero (R, capacity, d) and (R, capacity) buffers shaped after a chunk."""
    return (jnp.zeros((Xj.shape[0], capacity) + Xj.shape[2:], Xj.dtype),
            jnp.zeros((yj.shape[0], capacity), yj.dtype))


@lazy_jit(profile="data", donate_argnums=(0, 1))
def _place(X, y, Xj, yj, start):
    """Write a chunk into the buffers at row `start` (in place: the buffers are donated)."""
    return (jax.lax.dynamic_update_slice_in_dim(X, Xj, start, axis=1),
            jax.lax.dynamic_update_slice_in_dim(y, yj, start, axis=1))


@lazy_jit(profile="data", static_argnums=3)
def _cyclic_rows(X, y, n, rows: int):
    """The first `rows` rows, row i >= n replaced by row i mod n (n traced: one program per
    padded size)."""
    i = jnp.arange(rows)
    idx = jnp.where(i < n, i, i % n)
    return X[:, idx], y[:, idx]


def padding_weights(n: int, shape) -> jax.Array:
    """Sample weights of padded data (R, rows): 1 on the first n rows, 0 after."""
    return _padding_weights(n, tuple(shape))


@lazy_jit(profile="data", static_argnums=1)
def _padding_weights(n, shape):
    return jnp.broadcast_to(jnp.arange(shape[-1]) < n, shape).astype(jnp.float64)


@functools.lru_cache(maxsize=32)
def _built(setting_json: str) -> Built:
    """build(), once per setting in a sweep process."""
    return build(Setting.model_validate_json(setting_json))


@functools.lru_cache(maxsize=256)
def _truth(setting_json: str, n: int) -> MoEParams:
    return _built(setting_json).truth(n)


@functools.lru_cache(maxsize=32)
def _simulators(setting_json: str):
    built = _built(setting_json)
    setting = built.setting
    assignment = None if setting.init.assignment is None else tuple(setting.init.assignment)

    def chunk(kd, truth, j):
        kx, ky = jax.random.split(jax.random.fold_in(kd, j))
        X = draw_x(setting.x, kx, CHUNK, setting.n_features)
        return X, built.truth_model.sample(ky, truth, X)

    def start(ki, truth):
        return near_truth(built.fit_model, truth, ki, setting.init.scale, assignment)

    sample_chunk = jit(jax.vmap(chunk, in_axes=(0, None, None)), "data")
    near = setting.init.kind == "near_truth"
    return sample_chunk, jit(jax.vmap(start, in_axes=(0, None)), "small") if near else None


def eval_points(seed: int, setting: Setting):
    """Held-out x (N_EVAL, d) for the density / regression errors: one set per root seed."""
    return _eval_points(seed, setting.x.model_dump_json(), setting.n_features)


@functools.lru_cache(maxsize=32)
def _eval_points(seed: int, x_json: str, d: int):
    return _draw_eval_points(seed, x_json, d)


@lazy_jit(profile="small", static_argnums=(1, 2))
def _draw_eval_points(seed, x_json: str, d: int):
    """The key and the draw as one program (run eagerly they compiled five small ones)."""
    key = jax.random.fold_in(jax.random.PRNGKey(seed), zlib.crc32(b"eval"))
    return draw_x(XDist.model_validate_json(x_json), key, N_EVAL, d)


@functools.lru_cache(maxsize=32)
def _metric_evaluator(setting_json: str, metrics: tuple[str, ...]):
    """jit(vmap(metric_fn)) over replicates, compiled once per setting (not per n)."""
    built = build(Setting.model_validate_json(setting_json))
    return jit(jax.vmap(metric_fn(built, list(metrics)), in_axes=(0, None, None, None)))


N_APPROX = 50_000  # noiseless x draw on which the best k-atom approximation is fitted


@functools.lru_cache(maxsize=64)
def best_approximation(setting_json: str, n: int) -> MoEParams:
    """G_bar = argmin over k-atom parameters of ||f_G - f_G*||^2 on a fixed draw of N_APPROX
    x from the setting's x-law (noiseless least squares, Levenberg-Marquardt to tol 1e-14 from
    the exact split of the truth, i.e. the centre of the near-truth starts). The reference of
    `reference = "best_approximation"` settings: an over-specified sigmoid-gated truth whose
    over-fitted atom has beta1* != 0 cannot be split exactly (experiments.md §8)."""
    setting = Setting.model_validate_json(setting_json)
    built = build(setting)
    truth = built.truth(n)
    key = jax.random.fold_in(jax.random.PRNGKey(0), zlib.crc32(b"best_approximation"))
    X = draw_x(setting.x, key, N_APPROX, setting.n_features)
    y = built.truth_model.mean(truth, X)
    assignment = None if setting.init.assignment is None else tuple(setting.init.assignment)
    start = near_truth(built.fit_model, truth, key, 0.0, assignment)
    result = fit(built.fit_model, X, y, start, estimator="lse",
                 options=FitOptions(max_iter=5000, tol=1e-14,
                                    expert_bound=setting.expert_bound))  # the fits' space
    return result.params


def reference_params(setting: Setting, truth: MoEParams, n: int) -> MoEParams:
    """What the setting's parameter errors are measured against (config `reference`)."""
    if setting.reference == "truth":
        return truth
    return best_approximation(setting.model_dump_json(), n)


SPLIT_AFTER = 50  # replicates still running after 50, 100, 200, ... iterations continue in a
# smaller batch (fit_batch): a block no longer waits for its slowest fit at full width


MAX_LIVE_SHAPES = 32  # (setting, rows) pairs whose executables a sweep process keeps at once
_LIVE_SHAPES: set = set()


def _limit_live_executables(setting_json: str, rows: int) -> None:
    """Drop compiled executables once MAX_LIVE_SHAPES (setting, rows) pairs have been used.
    Every (setting, rows) compiles its own fits (and fit_batch's splits a few more); a long sweep
    process that kept them all ran out of memory mappings (LLVM "Cannot allocate memory",
    vm.max_map_count) after ~200 cells. Dropping them at every new n instead cost 2.4x on the
    contaminated full preset (92.6 s vs 38.8 s: the per-setting simulators and metrics were
    rebuilt each time), so they are dropped in groups; a revisited shape is read back from
    the on-disk compilation cache."""
    key = (setting_json, rows)
    if key not in _LIVE_SHAPES and len(_LIVE_SHAPES) >= MAX_LIVE_SHAPES:
        jax.clear_caches()
        _LIVE_SHAPES.clear()
        _FIT_PROGRAMS.clear()
    _LIVE_SHAPES.add(key)


FLAGS = ("converged", "at_bound", "floored", "empty", "separated", "degenerate")  # per fit


def finite_or_none(values) -> list[float | None]:
    """Floats, with None (a Parquet null) where not finite: no NaN or inf reaches a results
    file; a fit whose value could not be computed says so in its flags."""
    v = np.asarray(values, float).reshape(-1)
    return [float(x) if np.isfinite(x) else None for x in v]


def memory_budget() -> float:
    """Bytes one cell may use: $MOESTAT_MEMORY_GB, else a quarter of the physical memory."""
    gb = os.environ.get("MOESTAT_MEMORY_GB")
    if gb:
        try:
            value = float(gb)
        except ValueError:
            raise InputError(f"MOESTAT_MEMORY_GB must be a number, got {gb!r}") from None
        if not value > 0:
            raise InputError(f"MOESTAT_MEMORY_GB must be > 0, got {gb!r}")
        return value * 2**30
    return 0.25 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def bytes_per_replicate(model: MixtureOfExperts, n: int) -> int:
    """An estimate, on the high side, of one replicate's peak memory in a batched fit
    (float64): the data (n, d + 1), about 8 arrays of (n, K) (responsibilities, log weights,
    log joint, ...), the gate Hessian's (n, K^2 m) product, a least-squares Jacobian (n, P)
    and, for the one-pass EM, its data statistics D (n, n_D) twice (formed, then read). For
    lse_ridge_long at n = 1e6 it gives 0.44 GB; the process measured ~0.28 GB per replicate
    (2.8 GB resident for a block of 10). Softmax + linear experts, n = 1e5: d = 1 0.06 GB
    (XLA's analysis: 0.03), d = 32 1.4 GB (1.0). Used only to choose the replicate block."""
    d, K, P = model.n_features, model.n_components, model.n_free_parameters()
    m = d * (d + 1) // 2 + d + 1 if model.gate.name.startswith("quadratic") else d + 1
    return 8 * n * (d + 2 + 8 * K + K * K * m + P + 2 * data_columns(model))


def replicate_blocks(reps: list[int], model: MixtureOfExperts, n: int) -> list[list[int]]:
    """The cell's replicates in consecutive blocks that each fit in memory_budget()."""
    size = max(1, int(memory_budget() // bytes_per_replicate(model, n)))
    return [reps[i:i + size] for i in range(0, len(reps), size)]


def run_cell(config: ExperimentConfig, cell: Cell) -> dict[str, list]:
    """Fit every replicate of the cell and return its rows (column -> list). A cell larger
    than the memory budget runs in consecutive replicate blocks (the same rows, floats to
    rounding: replicates are independent, their data and starts depend only on (seed,
    setting, n, replicate))."""
    setting = next(s for s in config.settings if s.name == cell.setting)
    size = fit_rows(config, setting, cell.n)
    text = setting.model_dump_json()
    _limit_live_executables(text, size)
    built, truth = _built(text), _truth(text, cell.n)
    rows: dict[str, list] = {}
    for block in replicate_blocks(list(range(cell.start, cell.stop)), built.fit_model, size):
        for k, v in _run_replicates(config, setting, built, truth, cell.n, block,
                                    size).items():
            rows.setdefault(k, []).extend(v)
    return rows


def fit_rows(config: ExperimentConfig, setting: Setting, n: int) -> int:
    """The padded size the cells of size n fit at (experiments/padding.py): near-truth
    settings share programs across the n grid; random starts fit exactly n rows."""
    if setting.init.kind != "near_truth":
        return n
    return padded_rows(config.n_values(), config.replicates)[n]


def fit_options(setting: Setting) -> FitOptions:
    """The estimator options a setting asks for (iterations, tolerance, expert box)."""
    return FitOptions(max_iter=setting.max_iter, tol=setting.tol,
                      expert_bound=setting.expert_bound)


def near_truth_starts(built: Built, setting: Setting, start: MoEParams, init_keys, truth):
    """The near-truth starts of a block: `start` (from init key k_r), then, for init.best_of > 1,
    starts j = 1, 2, ... drawn from fold_in(k_r, j) — the first start and hence a single-start
    run's results do not depend on best_of."""
    yield start
    _, start_fn = _simulators(setting.model_dump_json())
    fold = jax.vmap(jax.random.fold_in, in_axes=(0, None))
    for j in range(1, setting.init.starts):
        yield start_fn(fold(init_keys, j), truth)


def best_of_starts(results) -> FitResult:
    """Elementwise over replicates, the fit with the largest finite objective (the first on
    ties); results: FitResults of the same replicates from different starts."""
    best, best_score = None, None
    for r in results:
        score = np.asarray(r.objective)  # scores in NumPy: no eager programs to compile
        score = np.where(np.isfinite(score), score, -np.inf)
        if best is None:
            best, best_score = r, score
            continue
        better = jnp.asarray(score > best_score)
        best = jax.tree_util.tree_map(functools.partial(_where_rows, better), r, best)
        best_score = np.maximum(score, best_score)
    return best


def _where_rows(mask, a, b):
    """a where mask else b, mask (R,) over the leading axis of a, b (R, ...)."""
    return jnp.where(mask.reshape(mask.shape + (1,) * (a.ndim - 1)), a, b)


_FIT_PROGRAMS: set = set()  # (setting json, R, rows) whose fit program this process compiled


def _compile_fit_meanwhile(setting, built, truth, R: int, rows: int, options):
    """Compile a near-truth block's fit program on a helper thread while this thread
    simulates its data (the sampler and start programs compile here meanwhile: XLA compiles
    on one core, so the two compiles share the machine's two). Returns the thread to join
    before fitting, or None when the program is compiled already (or nothing to compile).
    The program is the one fit_batch then finds compiled (an AOT compile fills jit's cache)."""
    key = (setting.model_dump_json(), R, rows)
    if setting.init.kind != "near_truth" or key in _FIT_PROGRAMS:
        return None
    _FIT_PROGRAMS.add(key)
    _, start_fn = _simulators(key[0])  # looked up here: both threads get the same programs
    program = first_stage(built.fit_model, setting.estimator, options, SPLIT_AFTER)
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


def _run_replicates(config, setting, built, truth, n: int, reps: list[int],
                    size: int) -> dict[str, list]:
    """Fit replicates `reps` of size n, padded to `size` rows of which the last size - n
    have weight 0 (near-truth settings only; fit_rows)."""
    keys = replicate_keys(config.seed, setting.name, n, reps)
    options = fit_options(setting)
    compiling = _compile_fit_meanwhile(setting, built, truth, len(reps), size, options)
    X, y, start, init_keys = simulate(built, keys, truth, n, size)
    if compiling is not None:
        compiling.join()
    t0 = time.perf_counter()
    if setting.init.kind == "near_truth":
        weights = padding_weights(n, y.shape)
        result = best_of_starts(
            fit_batch(built.fit_model, X, y, s0, estimator=setting.estimator, options=options,
                      weights=weights, split_after=SPLIT_AFTER)
            for s0 in near_truth_starts(built, setting, start, init_keys, truth))
    else:
        parts = [fit_random(built.fit_model, X[i], y[i], init_keys[i], setting.init.starts,
                            estimator=setting.estimator, options=options)[0]
                 for i in range(len(reps))]
        result = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *parts)
    names = config.metrics_for(setting.name)
    metrics = _metric_evaluator(setting.model_dump_json(), tuple(names))(
        result.params, reference_params(setting, truth, n), truth,
        eval_points(config.seed, setting))
    metrics = jax.device_get(metrics)
    result = jax.device_get(result)
    seconds = (time.perf_counter() - t0) / len(reps)
    rows: dict[str, list] = {
        "setting": [setting.name] * len(reps), "n": [n] * len(reps), "replicate": reps,
        "seed": [config.seed] * len(reps),
        "objective": finite_or_none(result.objective),
        "loglik": finite_or_none(result.loglik),
        "n_iter": np.asarray(result.n_iter, int).tolist(),
        **{f: np.asarray(getattr(result, f), bool).tolist() for f in FLAGS},
        "failed": [False] * len(reps),
        "fit_seconds": [seconds] * len(reps), "version": [__version__] * len(reps),
    }
    for name in names:
        rows[f"metric.{name}"] = finite_or_none(metrics[name])
    return rows
