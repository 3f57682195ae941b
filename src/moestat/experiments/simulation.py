"""Simulating a cell's replicates: data and near-truth starts from replicate keys.

Replicate r's data key kd and init key ki are split(key_r); rows come in chunks of CHUNK:
chunk j is drawn from fold_in(kd, j) by one sampler compiled per setting (not per n: every
n reuses it; compiling the threefry sampler costs ~1-2 s), so the first n rows do not depend
on how many chunks are drawn. Padding rows (a near-truth cell fits a shared padded size,
moestat/padding.py) repeat the cell's rows cyclically and cost no sampling.
"""

from __future__ import annotations

import functools
import zlib

import jax
import jax.numpy as jnp

from moestat.compiling import jit, lazy_jit
from moestat.experiments.config import Setting, XDist
from moestat.experiments.settings import SettingModels, built
from moestat.fit import near_truth
from moestat.model import MoEParams
from moestat.padding import cyclic_index

CHUNK = 4096  # rows drawn per compiled sampler call
N_EVAL = 1000  # held-out x for the density / regression errors


def draw_x(xdist: XDist, key, n: int, d: int):
    """n inputs (n, d) from the setting's x-law."""
    if xdist.dist == "uniform":
        return jax.random.uniform(key, (n, d), minval=xdist.low, maxval=xdist.high)
    return jax.random.normal(key, (n, d))


def simulate(models: SettingModels, keys, truth: MoEParams, n: int, rows: int | None = None):
    """Replicate data X (R, rows, d), y (R, rows), near-truth starts (None for random starts)
    and init keys (R, 2) from replicate keys (R, 2); rows defaults to n (module docstring)."""
    rows = n if rows is None else rows
    if not 1 <= n <= rows:
        raise ValueError(f"simulate needs 1 <= n <= rows, got n={n}, rows={rows}")
    sample_chunk, start_fn = simulators(models.setting.model_dump_json())
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
    idx = cyclic_index(n, rows, jnp)
    return X[:, idx], y[:, idx]


def padding_weights(n: int, shape) -> jax.Array:
    """Sample weights of padded data (R, rows): 1 on the first n rows, 0 after."""
    return _padding_weights(n, tuple(shape))


@lazy_jit(profile="data", static_argnums=1)
def _padding_weights(n, shape):
    return jnp.broadcast_to(jnp.arange(shape[-1]) < n, shape).astype(jnp.float64)


@functools.lru_cache(maxsize=32)
def simulators(setting_json: str):
    """(chunk sampler, near-truth start program or None) of a setting, compiled once."""
    models = built(setting_json)
    setting = models.setting
    assignment = None if setting.init.assignment is None else tuple(setting.init.assignment)

    def chunk(kd, truth, j):
        kx, ky = jax.random.split(jax.random.fold_in(kd, j))
        X = draw_x(setting.x, kx, CHUNK, setting.n_features)
        return X, models.truth_model.sample(ky, truth, X)

    def start(ki, truth):
        return near_truth(models.fit_model, truth, ki, setting.init.scale, assignment)

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
    """The key and the draw as one program."""
    key = jax.random.fold_in(jax.random.PRNGKey(seed), zlib.crc32(b"eval"))
    return draw_x(XDist.model_validate_json(x_json), key, N_EVAL, d)
