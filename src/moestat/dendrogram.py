"""The dendrogram of mixing measures: the number of experts read off one over-specified fit
(Do, Do, McKinley, Terhorst and Nguyen, arXiv 2403.01684; for softmax-gated experts
arXiv 2510.12744).

A softmax-gated fit with K experts is the mixing measure G = sum_i p_i delta_{theta_i}:
p = softmax(beta0) (the gauge-free weights; merging changes no other atom's logit), theta_i
= (beta1_i, the expert's fields, the noise's fields) on the fit's standardised scale. Merging
atoms i and j gives

    p = p_i + p_j  (the gate intercept log-sum-exp(beta0_i, beta0_j)),
    theta = (p_i theta_i + p_j theta_j) / p,
    height d = p_i p_j / (p_i + p_j) ||theta_i - theta_j||^2,

and merging the pair of least height K - 1 times gives the levels G^(K), ..., G^(1). The
dendrogram information criterion of the level with kappa atoms is

    DIC(kappa) = -(d(kappa) + omega_n lbar(kappa)),   omega_n = log n,

lbar the mean log-likelihood of G^(kappa) and d(kappa) the height of the merge that LEAVES
that level (kappa -> kappa - 1; 0 at kappa = 1); the selected number is the argmin. Why that
height: above the true k*, the merged atoms approximate one true atom, so their heights -> 0
while lbar barely moves; leaving k* merges two distinct true atoms (a height bounded away
from 0); below k*, lbar drops by a constant, which omega_n -> infinity magnifies. With the
height of the merge that CREATED the level instead, the level k* + 1 and k* differ by a
vanishing amount and the criterion cannot be consistent (docs/design.md).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from moestat.errors import InputError
from moestat.model import MixtureOfExperts, MoEParams


def dendrogram_defined(model: MixtureOfExperts) -> bool:
    """The dendrogram is defined for a mixture with the softmax gate and no frozen expert."""
    return model.gate.name == "softmax" and model.frozen is None and model.kind == "mixture"


def check_dendrogram_model(model: MixtureOfExperts) -> None:
    if not dendrogram_defined(model):
        raise InputError("the dendrogram of mixing measures needs a mixture with the softmax "
                         f"gate and no frozen expert, got {model.describe()}")


def _atoms(model: MixtureOfExperts, params: MoEParams) -> tuple[np.ndarray, np.ndarray]:
    """(p (K,), theta (K, m)): weights softmax(beta0) and each atom's other parameters."""
    k = model.n_experts
    p = np.array(jax.nn.softmax(params.gate.beta0))
    cols = [np.asarray(params.gate.beta1).reshape(k, -1)]
    for block in (params.expert, params.noise):
        for name, v in block._asdict().items():
            v = np.asarray(v)
            if v.shape[:1] != (k,):
                raise InputError(f"the dendrogram needs per-expert parameters; {name} has "
                                 f"shape {v.shape}")
            cols.append(v.reshape(k, -1))
    return p, np.concatenate(cols, axis=1)


DEAD_LOGIT = -1e3  # the gate intercept of a merged-away slot: weight exp(-1e3) = 0 exactly


def _stacked(template: MoEParams, d: int, ps: np.ndarray, thetas: np.ndarray) -> MoEParams:
    """MoEParams with a leading level axis: level l has weights ps[l] (K,) (0 for slots merged
    away, intercept DEAD_LOGIT) and atoms thetas[l] (K, m); K slots at every level, so one
    compiled program evaluates them all."""
    L, K = ps.shape
    beta1, rest = thetas[:, :, :d], thetas[:, :, d:]
    blocks = []
    for block in (template.expert, template.noise):
        fields = {}
        for name, v in block._asdict().items():
            width = int(np.prod(np.shape(v)[1:]))
            fields[name] = jnp.asarray(rest[:, :, :width].reshape((L, K, *np.shape(v)[1:])))
            rest = rest[:, :, width:]
        blocks.append(type(block)(**fields))
    logits = np.where(ps > 0, np.log(np.where(ps > 0, ps, 1.0)), DEAD_LOGIT)
    gate = template.gate._replace(beta1=jnp.asarray(beta1), beta0=jnp.asarray(logits))
    return MoEParams(gate, *blocks)


@functools.lru_cache(maxsize=32)
def _mean_logliks(model: MixtureOfExperts):
    """stacked params, X, y, w -> (L,) weighted mean log-likelihood of each level."""
    def one(params, X, y, w):
        return jnp.sum(w * model.log_prob(params, X, y)) / jnp.sum(w)

    return jax.jit(jax.vmap(one, in_axes=(0, None, None, None)))


def dendrogram(model: MixtureOfExperts, params: MoEParams, X, y, weights,
               loglik_shift: float = 0.0) -> dict:
    """Merge the K atoms of `params` (fitted to standardised X, y with row `weights`) down to
    one. Returns {"levels": [{"k", "height", "mean_loglik", "dic", "merged"}] from K to 1,
    "selected_k", "omega", "linkage", "weights"}: `merged` the pair of the level's atoms joined when
    leaving it (their slots among the K), `linkage` SciPy's (K - 1, 4) matrix.
    `loglik_shift` is added to every mean log-likelihood (-log c for a response standardised
    by c: the user's scale); it moves every DIC by the same amount. `weights`: the K atoms'
    p (SciPy's leaves)."""
    check_dendrogram_model(model)
    X, y, w = (jnp.asarray(a, dtype=jnp.float64) for a in (X, y, weights))
    omega = float(np.log(float(jnp.sum(w > 0))))
    p, theta = _atoms(model, params)
    K = len(p)
    ids, sizes = list(range(K)), [1] * K  # SciPy ids: leaves 0..K-1, the r-th merge K + r
    ps, thetas, levels, linkage = [p.copy()], [theta.copy()], [], []
    for k in range(K, 1, -1):
        alive = p > 0
        diff = theta[:, None, :] - theta[None, :, :]
        with np.errstate(invalid="ignore", divide="ignore"):
            height = (p[:, None] * p[None, :] / (p[:, None] + p[None, :])) * np.sum(diff**2, -1)
        height[~(alive[:, None] & alive[None, :]) | np.eye(K, dtype=bool)] = np.inf
        i, j = sorted(np.unravel_index(int(np.argmin(height)), height.shape))
        levels.append({"k": k, "height": float(height[i, j]), "merged": [int(i), int(j)]})
        linkage.append([ids[i], ids[j], float(height[i, j]), sizes[i] + sizes[j]])
        merged = p[i] + p[j]
        theta[i] = (p[i] * theta[i] + p[j] * theta[j]) / merged
        p[i], p[j] = merged, 0.0
        ids[i], sizes[i] = K + len(linkage) - 1, sizes[i] + sizes[j]
        ps.append(p.copy())
        thetas.append(theta.copy())
    levels.append({"k": 1, "height": 0.0, "merged": None})
    stacked = _stacked(params, model.n_features, np.array(ps), np.array(thetas))
    lbar = np.asarray(_mean_logliks(model)(stacked, X, y, w)) + loglik_shift
    for row, value in zip(levels, lbar, strict=True):
        row["mean_loglik"] = float(value)
        row["dic"] = -(row["height"] + omega * row["mean_loglik"])
    best = min(levels, key=lambda r: r["dic"])
    return {"levels": levels, "selected_k": best["k"], "omega": omega, "linkage": linkage,
            "weights": [float(v) for v in ps[0]]}
