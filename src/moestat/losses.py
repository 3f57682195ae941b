"""Voronoi losses, per-parameter errors and density errors (docs/losses.md).

An *atom* is one expert's parameter block without its gate intercept: per-expert gate fields
except beta0 (beta1, A), the expert's fields, and — in mixture models — its variance. Fitted
atoms i = 1..k are matched to true atoms j = 1..k* by Voronoi cells

    A_j = { i : dist(theta_i, theta*_j) <= dist(theta_i, theta*_l) for all l },

dist = sum of per-block Euclidean norms, ties broken by the lowest j. Cells are a one-hot
(k, k*) matrix, so every loss below is matrix algebra with static shapes: jit- and
vmap-compatible (vmap over a leading replicate axis of `fitted`).

Gauge (softmax family): a common shift of every expert's gate parameters leaves the model
unchanged. The fitted gate is aligned to the truth's gauge (true last atom = 0) by trying each
fitted atom r as the reference (subtract its gate row), keeping the r with the cheapest
matching, then shifting beta0 so that the reference cell's total weight equals the truth's.
The result is invariant to gauge shifts and to permutations of the fitted experts.

Weights: w(beta0) = exp(beta0) (softmax family), sigmoid(beta0) (sigmoid gates).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp

from moestat.model import MixtureOfExperts, MoEParams

RBAR = {2: 4.0, 3: 6.0}  # rbar(|A_j|) for D2 (docs/losses.md); unknown beyond 3


# ---- atoms, weights, cells ---------------------------------------------------------------
def atom_blocks(model: MixtureOfExperts, params: MoEParams) -> dict[str, jax.Array]:
    """{block: (k, p)}: per-expert gate fields but beta0 and tau, expert fields, variance."""
    k = model.n_experts
    out = {}
    for f, v in params.gate._asdict().items():
        if f not in ("beta0", "tau") and jnp.ndim(v) >= 1 and v.shape[0] == model.n_components:
            out[f] = v[:k].reshape(k, -1)
    for f, v in params.expert._asdict().items():
        out[f] = v.reshape(k, -1)
    if model.kind == "mixture":
        out["var"] = params.noise.var.reshape(k, 1)
    return out


def intercept_weights(model: MixtureOfExperts, beta0):
    """w(beta0): exp for normalised (softmax-family) gates, sigmoid for sigmoid gates."""
    return model.gate.intercept_weight(beta0)


def shared_gate_errors(model: MixtureOfExperts, fitted: MoEParams, truth: MoEParams):
    """{field: |fitted - truth|} for the gate's scalar fields shared by every expert (the
    temperature tau): reported apart and added to every Voronoi loss."""
    shapes = model.gate.shapes(model.n_components, model.n_features)
    return {f: jnp.abs(getattr(fitted.gate, f) - getattr(truth.gate, f))
            for f, shape in shapes.items() if shape == ()}


def block_distances(fit_blocks, true_blocks) -> dict[str, jax.Array]:
    """{block: (k, k*)} Euclidean norms of differences between fitted and true atoms."""
    return {b: jnp.linalg.norm(fit_blocks[b][:, None, :] - true_blocks[b][None, :, :], axis=-1)
            for b in true_blocks}


def voronoi_cells(dist):
    """dist (k, k*) -> one-hot cells (k, k*): fitted atom i joins its nearest true atom
    (argmin takes the lowest index among ties)."""
    return jax.nn.one_hot(jnp.argmin(dist, axis=1), dist.shape[1])


def _shift_gauge(model, gate_params, r):
    """Subtract fitted atom r's row from every gauge field (a softmax-invariant shift)."""
    return gate_params._replace(**{f: getattr(gate_params, f) - getattr(gate_params, f)[r]
                                   for f in model.gate.shift_invariant})


def align_gauge(model: MixtureOfExperts, fitted: MoEParams, truth: MoEParams) -> MoEParams:
    """Fitted parameters in the truth's gauge (module docstring); identity without a gauge."""
    if not model.gate.shift_invariant:
        return fitted
    tb = atom_blocks_truth(model, truth)
    k = model.n_experts

    def cost(r):
        f = fitted._replace(gate=_shift_gauge(model, fitted.gate, r))
        d = sum(block_distances(atom_blocks(model, f), tb).values())
        return jnp.sum(jnp.min(d, axis=1))

    costs = jax.vmap(cost)(jnp.arange(k))
    r = jnp.argmin(costs)
    gate = _shift_gauge(model, fitted.gate, r)
    f = fitted._replace(gate=gate)
    cells = voronoi_cells(sum(block_distances(atom_blocks(model, f), tb).values()))
    ref = cells[:, -1]  # the cell of the truth's reference (last) atom
    lse = jax.nn.logsumexp(jnp.where(ref > 0, gate.beta0, -jnp.inf))
    c0 = jnp.where(jnp.any(ref > 0), lse - truth.gate.beta0[-1], 0.0)
    return f._replace(gate=gate._replace(beta0=gate.beta0 - c0))


def atom_blocks_truth(model: MixtureOfExperts, truth: MoEParams):
    """Atoms of a truth with k* experts (the fitted model may have k >= k*)."""
    k_true = jax.tree_util.tree_leaves(truth.expert)[0].shape[0]
    return atom_blocks(_with_k(model, k_true), truth)


def _with_k(model: MixtureOfExperts, k: int) -> MixtureOfExperts:
    return dataclasses.replace(model, n_experts=int(k)) if k != model.n_experts else model


def match(model: MixtureOfExperts, fitted: MoEParams, truth: MoEParams, truth_model=None):
    """Align the gauge and build cells. Returns (cells (k, k*), block distances {b: (k, k*)},
    fitted weights (k,), true weights (k*,), aligned fitted parameters).

    Gates of several families (shared + routed experts: `families`) match each family apart
    and return the families' cells and distances block-diagonally, in the experts' order.
    The truth's families follow `truth_model` (default: the fitted model with k* experts)."""
    if hasattr(model.gate, "families"):
        return _match_families(model, fitted, truth, truth_model)
    fitted = align_gauge(model, fitted, truth)
    fb = atom_blocks(model, fitted)
    tb = atom_blocks_truth(model, truth)
    bd = block_distances(fb, tb)
    cells = voronoi_cells(sum(bd.values()))
    k = model.n_experts
    w = intercept_weights(model, fitted.gate.beta0[:k])
    k_true = cells.shape[1]
    w_true = intercept_weights(model, truth.gate.beta0[:k_true])
    return cells, bd, w, w_true, fitted


def _match_families(model, fitted, truth, truth_model):
    tm = truth_model or _with_k(model, jax.tree_util.tree_leaves(truth.expert)[0].shape[0])
    parts = [match(m, f, t) for (_, m, f), (_, _, t) in
             zip(model.gate.families(model, fitted), tm.gate.families(tm, truth), strict=True)]
    diag = jax.scipy.linalg.block_diag
    blocks = dict.fromkeys(b for p in parts for b in p[1])
    bd = {b: diag(*(p[1].get(b, jnp.zeros_like(p[0])) for p in parts)) for b in blocks}
    return (diag(*(p[0] for p in parts)), bd, jnp.concatenate([p[2] for p in parts]),
            jnp.concatenate([p[3] for p in parts]), fitted)


# ---- Voronoi losses ------------------------------------------------------------------------
Exponent = Callable[[str, jax.Array], jax.Array]  # (block, cell size) -> exponent


def voronoi_loss(model, fitted, truth, exponent: Exponent, truth_model=None):
    """sum_j |sum_{i in A_j} w_i - w*_j| + sum_j sum_{i in A_j} w_i sum_b ||d b_ij||^e(b,|A_j|),
    plus |tau_hat - tau*| for temperature gates."""
    cells, bd, w, w_true, fitted = match(model, fitted, truth, truth_model)
    size = cells.sum(axis=0)  # (k*,)
    weight_term = jnp.sum(jnp.abs(cells.T @ w - w_true))
    atom_size = cells @ size  # (k,) size of each fitted atom's cell
    per_atom = sum(jnp.sum(cells * bd[b], axis=1) ** exponent(b, atom_size) for b in bd)
    return weight_term + jnp.sum(w * per_atom) + sum(shared_gate_errors(model, fitted,
                                                                         truth).values())


def d1(model, fitted, truth, truth_model=None):
    """D1 (exact-specified): every exponent 1."""
    return voronoi_loss(model, fitted, truth, lambda b, s: 1.0, truth_model)


D2_BLOCK_FACTOR = {"beta1": 1.0, "a": 0.5, "b": 1.0, "var": 0.5}  # exponent = factor * rbar


def d2(model, fitted, truth, rbar: dict[int, float] | None = None, truth_model=None):
    """D2 (over-specified Gaussian MoE): exponent 1 in singleton cells; in a cell of s >= 2
    atoms rbar(s) for beta1 and b, rbar(s)/2 for a and var (other blocks: rbar(s)), except
    where the gate fixes a block's exponent (`Gate.d2_overfitted_exponents`; the Laplace gate:
    2 for W and a). rbar(2) = 4, rbar(3) = 6; larger cells give NaN unless `rbar` supplies
    them (use `check_d2_cells` to raise a clear error)."""
    table = {**RBAR, **(rbar or {})}
    sizes = jnp.asarray(sorted(table))
    values = jnp.asarray([table[s] for s in sorted(table)])
    fixed = model.gate.d2_overfitted_exponents

    def exponent(block, s):
        r = jnp.where(jnp.any(sizes[None, :] == s[:, None], axis=1),
                      values[jnp.argmax(sizes[None, :] == s[:, None], axis=1)], jnp.nan)
        over = fixed[block] if block in fixed else D2_BLOCK_FACTOR.get(block, 1.0) * r
        return jnp.where(s <= 1, 1.0, over)

    return voronoi_loss(model, fitted, truth, exponent, truth_model)


def check_d2_cells(model, fitted, truth, rbar: dict[int, float] | None = None,
                   truth_model=None) -> None:
    """Raise InputError when a Voronoi cell has a size with no established rbar."""
    from moestat.errors import InputError

    cells, *_ = match(model, fitted, truth, truth_model)
    sizes = jnp.asarray(cells).sum(axis=-2)
    known = set(RBAR) | set(rbar or {})
    bad = sorted({int(s) for s in jnp.ravel(sizes) if s > 1 and int(s) not in known})
    if bad:
        raise InputError(f"D2 needs rbar for cells of {bad} atoms (known: {sorted(known)}); "
                         "pass rbar={size: exponent}")


def d_lse(model, fitted, truth, truth_model=None):
    """D_LSE (over-specified regression MoE): exponent 1 in singleton cells, 2 otherwise."""
    return voronoi_loss(model, fitted, truth, lambda b, s: jnp.where(s <= 1, 1.0, 2.0),
                        truth_model)


def d_r(model, fitted, truth, r: float, truth_model=None):
    """D_r: every parameter difference raised to r in every cell."""
    return voronoi_loss(model, fitted, truth, lambda b, s: float(r), truth_model)


def to_truth_scale(model, fitted, truth):
    """Scale-invariant gates (the plain temperature gate: softmax((beta1 x + beta0) / tau) is
    unchanged by (beta1, beta0, tau) -> c (beta1, beta0, tau), so only the ratios to tau are
    identifiable): the fitted parameters moved along that ray to the truth's scale; the
    `*_scaled` metrics are the usual losses evaluated on them."""
    return fitted._replace(gate=model.gate.to_scale(fitted.gate, truth.gate))


SCALED = "_scaled"  # metric-name marker: evaluate on to_truth_scale(fitted)


# ---- per-parameter errors ------------------------------------------------------------------
def parameter_errors(model, fitted, truth, truth_model=None) -> dict[str, jax.Array]:
    """Per block: the max over true atoms of each cell's error (singleton: the atom's error;
    over-fitted cell: the max over its atoms); `<block>@singleton` / `<block>@overfitted`
    restrict to that cell type (NaN when there is none); `beta0_weight` = max_j |sum w - w*|;
    `tau` for temperature gates; `empty_cells` counts true atoms no fitted atom matched."""
    cells, bd, w, w_true, fitted = match(model, fitted, truth, truth_model)
    size = cells.sum(axis=0)
    out = {}
    for b, d in bd.items():
        per_cell = jnp.max(jnp.where(cells > 0, d, -jnp.inf), axis=0)  # (k*,)
        per_cell = jnp.where(size > 0, per_cell, jnp.nan)
        out[b] = jnp.nanmax(per_cell)
        out[f"{b}@singleton"] = _masked_max(per_cell, size == 1)
        out[f"{b}@overfitted"] = _masked_max(per_cell, size > 1)
    out["beta0_weight"] = jnp.max(jnp.abs(cells.T @ w - w_true))
    out.update(shared_gate_errors(model, fitted, truth))
    out["empty_cells"] = jnp.sum(size == 0).astype(float)
    return out


def _masked_max(x, mask):
    return jnp.where(jnp.any(mask), jnp.max(jnp.where(mask, x, -jnp.inf)), jnp.nan)


def prompt_errors(model, fitted, truth) -> dict[str, jax.Array]:
    """Contaminated models: one prompt, no label switching (docs/losses.md). The gate's own
    errors (`prompt_errors` of the gate: exp_tau and beta, or lambda), `eta` = the norm of every
    prompt-expert parameter difference, the norm of each expert field when there are several
    (a, b of linear and ridge prompts), and nu = |v_hat - v*|."""
    out = dict(model.gate.prompt_errors(fitted.gate, truth.gate))
    diffs = {f: jnp.ravel(getattr(fitted.expert, f) - getattr(truth.expert, f))
             for f in fitted.expert._fields}
    out["eta"] = jnp.linalg.norm(jnp.concatenate(list(diffs.values())))
    if len(diffs) > 1:
        out.update({f: jnp.linalg.norm(v) for f, v in diffs.items()})
    out["nu"] = jnp.abs(fitted.noise.var - truth.noise.var).reshape(())
    return out


# ---- density / regression error ------------------------------------------------------------
def hellinger(model, fitted, truth, X_eval, n_grid: int = 2048, truth_model=None):
    """Monte-Carlo E_x[h(p_hat(.|x), p*(.|x))] over the held-out draw X_eval (n_eval, d), with
    h^2 = 1/2 int (sqrt p_hat - sqrt p*)^2 dy by the trapezoid rule on a per-x grid covering
    every component mean +/- 10 sd of both models (the integrand is >= 0: no cancellation)."""
    tm = truth_model or _with_k(model, jax.tree_util.tree_leaves(truth.expert)[0].shape[0])

    def spread(m, p):
        means = m.expert_means(p, X_eval)
        var = jnp.broadcast_to(p.noise.var, (X_eval.shape[0], m.n_experts))
        if m.frozen is not None:
            var = jnp.concatenate([var, jnp.full((X_eval.shape[0], 1),
                                                 m.frozen.noise_params.var[0])], axis=1)
        sd = jnp.sqrt(var)
        return jnp.min(means - 10 * sd, axis=1), jnp.max(means + 10 * sd, axis=1)

    lo1, hi1 = spread(model, fitted)
    lo2, hi2 = spread(tm, truth)
    lo, hi = jnp.minimum(lo1, lo2), jnp.maximum(hi1, hi2)
    t = jnp.linspace(0.0, 1.0, n_grid)

    def one(x, a, b):
        ys = a + (b - a) * t
        xs = jnp.broadcast_to(x, (n_grid, x.shape[0]))
        p1 = jnp.exp(model.log_prob(fitted, xs, ys))
        p2 = jnp.exp(tm.log_prob(truth, xs, ys))
        h2 = 0.5 * jnp.trapezoid((jnp.sqrt(p1) - jnp.sqrt(p2)) ** 2, ys)
        return jnp.sqrt(jnp.clip(h2, 0.0, 1.0))

    return jnp.mean(jax.vmap(one)(X_eval, lo, hi))


def cell_l2_errors(model, fitted, truth, X_eval, truth_model=None) -> dict[str, jax.Array]:
    """Per Voronoi cell, the L2(P_x) error of the cell's share of the regression function:
    || sum_{i in A_j} w_i(x) h_i(x) - w*_j(x) h*_j(x) || on X_eval (N, d). Invariant to how a
    cell's atoms split the true atom (where parameters are not identifiable, e.g. sigmoid
    regime 2 with positively homogeneous experts: any amplitudes c_i h* with sum c_i = 1).
    Returns `cell_l2` (max over cells), `cell_l2@singleton`, `cell_l2@overfitted` (NaN when
    there is no such cell)."""
    tm = truth_model or _with_k(model, jax.tree_util.tree_leaves(truth.expert)[0].shape[0])
    cells, *_ = match(model, fitted, truth, tm)  # (k, k*)
    share = (model.gate_weights(fitted, X_eval) * model.expert_means(fitted, X_eval)) @ cells
    true_share = tm.gate_weights(truth, X_eval) * tm.expert_means(truth, X_eval)  # (N, k*)
    err = jnp.sqrt(jnp.mean((share - true_share) ** 2, axis=0))  # (k*,)
    size = cells.sum(axis=0)
    err = jnp.where(size > 0, err, jnp.nan)  # an empty cell: its share is missing entirely
    return {"cell_l2": jnp.nanmax(err), "cell_l2@singleton": _masked_max(err, size == 1),
            "cell_l2@overfitted": _masked_max(err, size > 1)}


def l2_error(model, fitted, truth, X_eval, truth_model=None):
    """||f_hat - f*||_{L2(P_x)} estimated on X_eval: sqrt(mean_x (f_hat(x) - f*(x))^2)."""
    tm = truth_model or _with_k(model, jax.tree_util.tree_leaves(truth.expert)[0].shape[0])
    diff = model.mean(fitted, X_eval) - tm.mean(truth, X_eval)
    return jnp.sqrt(jnp.mean(diff**2))


ACTIVE_SHARE = 0.01  # an atom whose mean gate weight over P_x is below this is switched off


def split_cells(model, fitted, truth, X_eval, truth_model=None) -> jax.Array:
    """The number of true atoms whose Voronoi cell holds two or more active fitted atoms (mean
    gate weight over X_eval (N, d) at least ACTIVE_SHARE): 0 when the fit uses one atom per
    true atom and switches its spare atoms off ("escaped" from a split start), >= 1 when a
    true atom is still served by several atoms ("stuck" in the split). A count, not a loss:
    it is reported per n, never fitted as a rate."""
    cells, *_ = match(model, fitted, truth, truth_model)  # (k, k*)
    active = jnp.mean(model.gate_weights(fitted, X_eval)[:, : model.n_experts], axis=0)
    active = (active >= ACTIVE_SHARE).astype(cells.dtype)
    return jnp.sum(active @ cells >= 2).astype(float)
