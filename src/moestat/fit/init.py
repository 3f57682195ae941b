"""Starting points for the estimators.

near_truth (the rate studies' protocol): every parameter of the truth is perturbed by
independent noise of relative size `scale`:
    real field     theta + scale * max(|theta|, 1) * eps
    positive field theta * exp(scale * eps)          (variances, temperature)
    unit field     sigmoid(logit(theta) + scale * eps)  (input-free lambda)
with eps ~ N(0, 1), then the gauge is re-fixed. An over-specified fit (k > k*) first splits true
atoms: fitted atom i copies true atom assignment[i] (default: the extra copies go to true atoms
0, 1, ... in turn), copies share slopes and experts and divide the weight (beta0 - log count).

random (users' data): responsibilities of one of four kinds (START_KINDS), taken in turn by
restart index, followed by one M-step from neutral parameters:
    kmeans_xy                hard clusters of k-means++ seeding plus Lloyd iterations on the
                             standardised (x, y)
    kmeans_residuals         the same on the standardised residuals of the global weighted
                             least-squares line y ~ x (crossing lines: above / below)
    random_partition         every row to a uniformly drawn expert (flexmix's default start)
    random_responsibilities  every row's responsibilities ~ Dirichlet(1, ..., 1)
Both random kinds come from one draw E (n, k) of i.i.d. Exp(1) variables: argmax_i E_ti is
uniform over the experts and E_t / sum_i E_ti is Dirichlet(1, ..., 1) (jax.random.dirichlet
draws the same law through a gamma sampler whose code is ~9x larger, which a fresh
`moestat fit` pays in loading its program).
The k-means kinds follow the data's geometry; the random kinds start near the symmetric point,
from where EM breaks the symmetry by the data rather than by the start. Frozen-expert models
instead label as prompt the points whose residual to the frozen expert exceeds c standard
deviations, c ~ U(1, 4). Restarts differ by their key.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from moestat.errors import InputError
from moestat.fit.em import maximize_gate_q, update_experts
from moestat.fit.result import FitOptions
from moestat.model import MixtureOfExperts, MoEParams


def prng_key(seed: int) -> np.ndarray:
    """jax.random.PRNGKey(seed)'s raw threefry key, (2,) uint32 — computed in NumPy, so that a
    fresh process does not compile JAX's seeding programs for it (cold-start latency)."""
    seed = int(seed)
    return np.array([(seed >> 32) & 0xFFFFFFFF, seed & 0xFFFFFFFF], dtype=np.uint32)


def default_assignment(k_true: int, k: int) -> np.ndarray:
    """Atoms 0..k*-1, then extra copies of true atoms 0, 1, ... in turn (sorted)."""
    if k < k_true:
        raise InputError(f"cannot start {k} experts near a truth with {k_true} experts")
    extra = [j % k_true for j in range(k - k_true)]
    return np.sort(np.concatenate([np.arange(k_true), np.asarray(extra, int)])).astype(int)


def n_true_experts(params: MoEParams) -> int:
    return int(jax.tree_util.tree_leaves(params.expert)[0].shape[0])


def perturb(model: MixtureOfExperts, params: MoEParams, key, scale: float) -> MoEParams:
    """Independent relative perturbation of every field (module docstring)."""
    out = []
    keys = jax.random.split(key, 3)
    for part, p, kp in zip(model.parts(), params, keys, strict=True):
        vals = {}
        fkeys = jax.random.split(kp, len(p))
        for (f, v), kf in zip(p._asdict().items(), fkeys, strict=True):
            eps = jax.random.normal(kf, jnp.shape(v))
            if f in part.positive:
                v = v * jnp.exp(scale * eps)
            elif f in part.unit:
                v = jax.nn.sigmoid(jnp.log(v) - jnp.log1p(-v) + scale * eps)
            else:
                v = v + scale * jnp.maximum(jnp.abs(v), 1.0) * eps
            vals[f] = v
        out.append(type(p)(**vals))
    return model.canonicalize(MoEParams(*out))


def near_truth(model: MixtureOfExperts, truth: MoEParams, key, scale: float = 0.1,
               assignment=None) -> MoEParams:
    """Start next to `truth` (k* experts) for a model with k >= k* experts."""
    k_true = n_true_experts(truth)
    if k_true != model.n_experts:
        if model.frozen is not None:
            raise InputError("frozen-expert models have exactly one prompt expert")
        if assignment is None:
            assignment = default_assignment(k_true, model.n_experts)
        assignment = np.asarray(assignment, int)
        if assignment.shape != (model.n_experts,) or assignment.min() < 0 or \
                assignment.max() >= k_true:
            raise InputError(f"assignment must give a true atom in [0, {k_true}) for each of "
                             f"{model.n_experts} fitted experts")
        truth = model.split(truth, assignment)
    return perturb(model, model.canonicalize(truth), key, scale)


def kmeans_labels(key, Z, weights, k: int, n_lloyd: int = 10):
    """Weighted k-means++ seeding + Lloyd iterations; Z (n, p) -> labels (n,)."""
    n = Z.shape[0]
    keys = jax.random.split(key, k)
    first = jax.random.choice(keys[0], n, p=weights / weights.sum())
    centers = jnp.zeros((k, Z.shape[1])).at[0].set(Z[first])

    def seed(j, centers):
        d2 = jnp.sum((Z[:, None, :] - centers[None]) ** 2, axis=-1)
        d2 = jnp.where(jnp.arange(k)[None, :] < j, d2, jnp.inf).min(axis=1)
        p = weights * d2
        p = jnp.where(p.sum() > 0, p / p.sum(), weights / weights.sum())
        return centers.at[j].set(Z[jax.random.choice(keys[j], n, p=p)])

    centers = jax.lax.fori_loop(1, k, seed, centers)

    def lloyd(_, centers):
        labels = jnp.argmin(jnp.sum((Z[:, None, :] - centers[None]) ** 2, axis=-1), axis=1)
        onehot = jax.nn.one_hot(labels, k) * weights[:, None]
        mass = onehot.sum(axis=0)
        new = (onehot.T @ Z) / jnp.maximum(mass, 1e-300)[:, None]
        return jnp.where(mass[:, None] > 0, new, centers)

    centers = jax.lax.fori_loop(0, n_lloyd, lloyd, centers)
    return jnp.argmin(jnp.sum((Z[:, None, :] - centers[None]) ** 2, axis=-1), axis=1)


def _standardise(A, weights):
    mu = jnp.sum(weights[:, None] * A, axis=0) / weights.sum()
    sd = jnp.sqrt(jnp.sum(weights[:, None] * (A - mu) ** 2, axis=0) / weights.sum())
    return (A - mu) / jnp.where(sd > 0, sd, 1.0)


START_KINDS = ("kmeans_xy", "kmeans_residuals", "random_partition", "random_responsibilities")


def global_residuals(X, y, weights):
    """(n,) residuals of the weighted least-squares fit y ~ [X, 1]."""
    A = jnp.concatenate([X, jnp.ones((X.shape[0], 1), X.dtype)], axis=1)
    sw = jnp.sqrt(weights)[:, None]
    coef = jnp.linalg.lstsq(A * sw, y * sw[:, 0])[0]
    return y - A @ coef


def initial_responsibilities(model: MixtureOfExperts, X, y, weights, key, kind=0):
    """(n_samples, n_components) responsibilities of start kind START_KINDS[kind] (module
    docstring); `kind` may be traced."""
    if model.frozen is not None:
        resid = jnp.abs(y - model.frozen.mean(X))
        sd0 = jnp.sqrt(jnp.asarray(model.frozen.noise_params.var[0]))
        c = jax.random.uniform(key, minval=1.0, maxval=4.0)
        prompt = (resid > c * sd0).astype(float)
        return jnp.stack([prompt, 1.0 - prompt], axis=1)
    k, n = model.n_experts, X.shape[0]
    kind = jnp.asarray(kind)
    xy = _standardise(jnp.concatenate([X, y[:, None]], axis=1), weights)
    resid = _standardise(global_residuals(X, y, weights)[:, None], weights)
    resid = jnp.concatenate([jnp.zeros_like(X), resid], axis=1)  # the same shape: one k-means
    labels = kmeans_labels(key, jnp.where(kind == 0, xy, resid), weights, k)
    E = jax.random.exponential(jax.random.fold_in(key, 1), (n, k), X.dtype)
    resp = jax.nn.one_hot(jnp.where(kind == 2, jnp.argmax(E, axis=1), labels), k)
    return jnp.where(kind == 3, E / jnp.sum(E, axis=1, keepdims=True), resp)


def random_start(model: MixtureOfExperts, X, y, weights, key, bounds,
                 options: FitOptions, kind=0) -> MoEParams:
    """One data-driven random start of kind START_KINDS[kind]: responsibilities -> one M-step
    from neutral parameters (the EM gate and expert updates, with 5 Newton steps and 5x the
    L-BFGS iterations)."""
    resp = initial_responsibilities(model, X, y, weights, key, kind)
    y_var = jnp.sum(weights * (y - jnp.sum(weights * y) / weights.sum()) ** 2) / weights.sum()
    p = model.zeros()
    if model.kind == "classification":  # no variance: the experts' step on the labels
        gate = maximize_gate_q(model.gate, p.gate, X, resp, weights,
                               (bounds[0].gate, bounds[1].gate), 5,
                               5 * options.inner_steps, options.ridge)
        longer = dataclasses.replace(options, expert_newton_steps=5)
        expert, _ = update_experts(model, p, X, y, resp * weights[:, None], bounds, longer)
        return MoEParams(gate, expert, p.noise)
    p = p._replace(noise=p.noise._replace(var=jnp.full_like(p.noise.var, y_var)))
    longer = dataclasses.replace(options, inner_steps=5 * options.inner_steps)
    gate = maximize_gate_q(model.gate, p.gate, X, resp, weights,
                           (bounds[0].gate, bounds[1].gate), 5, longer.inner_steps,
                           options.ridge)
    R = resp[:, : model.n_experts] * weights[:, None]
    expert, noise = update_experts(model, p, X, y, R, bounds, longer)
    var = noise.var
    p = MoEParams(gate, expert, p.noise)
    if model.kind == "regression":  # one shared variance: the mean squared residual
        var = jnp.sum(weights * (y - model.mean(p, X)) ** 2) / weights.sum()
        var = jnp.clip(var, bounds[0].noise.var, bounds[1].noise.var)
    else:
        var = jnp.where(R.sum(axis=0) > 0, var, y_var)  # an empty cluster keeps var(y)
    return p._replace(noise=p.noise._replace(var=var))
