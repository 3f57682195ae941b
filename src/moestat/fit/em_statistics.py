"""EM by sufficient statistics: one fused pass over the data per iteration.

Applies when the gate's logits are linear in its parameters (normalised gates exposing
`logit_features`: softmax, quadratic softmax, temperature softmax in its ratios,
contaminated), the trainable experts are linear in theirs (`design`) and the noise is
Gaussian. Then everything an EM iteration needs is a sum over samples of a per-sample vector
L_t, which changes every iteration, times a per-sample data vector D_t, which does not:

    S = L D                                                   (n_L, n_D)
    L_t = [r_t (K) | W_t (f) | C_t (f(f+1)/2)]               C_jl = W_j (delta_jl - W_l), j <= l
    D_t = w_t [the distinct monomials among 1, phi_a, phi_a phi_b, psi_a psi_b | y psi_a | y^2]

with r the responsibilities, W the gate weights of the f = K - 1 free gate rows, phi (m) the
gate features, psi (p) the expert design, w the sample weights. Features are monomials in x
(`logit_monomials`, `design_monomials`), so D holds each product once (softmax gate + linear
experts, d = 1: 1, x, x^2, y, x y, y^2). D (n, n_D) is formed once per fit; an iteration is one
fused element-wise pass forming L (n_L, n), one (n_L x n)(n x n_D) product, and one cheap pass
per trial of the gate step:

  gate     Newton step on Q_gate: gradient G_ja = S[r_j, phi_a] - S[W_j, phi_a], Hessian
           H_(ja)(lb) = S[C_jl, phi_a phi_b]; step-halving until
           dQ = sum_j dc_j . S[r_j, phi] - sum_t w_t log1p(sum_j W_tj expm1(dz_tj)) >= 0
           (dz = phi dc^T: the exact change of Q_gate, without the cancellation of Q_new - Q_old),
           halving only while the step's predicted gain exceeds RESOLVABLE per sample;
  experts  A_i = S[r_i, psi psi^T], b_i = S[r_i, y psi]: c_i = (A_i + lam I)^-1 b_i;
  variance v_i = (S[r_i, y^2] - 2 c_i . b_i + c_i^T A_i c_i) / S[r_i, 1], in its box.

The same algorithm as `fit/em.py` (same Newton step, acceptance rule, weighted least squares,
variance update and safeguards), so the iterates agree to rounding; `em` chooses it
automatically (`applies`). Memory: D adds n_D floats per sample (n_D <= MAX_DATA_COLUMNS).
"""

from __future__ import annotations

import functools

import jax.numpy as jnp
import numpy as np

from moestat.fit.acceleration import run_em
from moestat.fit.bounds import project
from moestat.fit.steps import MAX_HALVINGS, RESOLVABLE, newton_gate_move, ridge_solve

MAX_DATA_COLUMNS = 1024  # d = 32 with linear experts needs 595; measured at n = 1e5, d = 8,
# 16, 32, this path is 1.0x, 2.0x, 2.2x the generic EM's speed with 1.0x, 0.57x, 0.54x its
# memory (docs/performance.md), so it is used whenever D fits this bound


class Layout:
    """Which column of D holds each product the M-step reads (static, from the monomials).

    A monomial is a sorted tuple of variable indices ((): 1, (0, 0): x_0^2); "y" marks the
    response columns."""

    def __init__(self, phi: list[tuple], psi: list[tuple]):
        self._columns: dict = {}  # key -> column, in insertion order
        index = self._index
        self.one = index(())
        self.phi = np.array([index(a) for a in phi])
        self.phiphi = np.array([[index(_product(a, b)) for b in phi] for a in phi])
        self.psipsi = np.array([[index(_product(a, b)) for b in psi] for a in psi])
        self.ypsi = np.array([index(("y", a)) for a in psi])
        self.yy = index(("y", "y"))

    def _index(self, key) -> int:
        return self._columns.setdefault(key, len(self._columns))

    @property
    def keys(self) -> list:
        return list(self._columns)

    def data(self, X, y, weights):
        """D (n, n_D), weighted by w."""
        def monomial(t):
            return functools.reduce(jnp.multiply, [X[:, i] for i in t], jnp.ones_like(y))

        cols = [y * y if key == ("y", "y") else y * monomial(key[1]) if key[:1] == ("y",)
                else monomial(key) for key in self.keys]
        return weights[:, None] * jnp.stack(cols, axis=1)


def _product(a: tuple, b: tuple) -> tuple:
    return tuple(sorted(a + b))


def _layout(model, d: int) -> Layout:
    return Layout(model.gate.logit_monomials(d), model.expert.design_monomials(d))


def data_columns(model) -> int:
    """n_D, the columns of D this model's one-pass EM forms (0 when the family is not
    eligible: see `applies`; MAX_DATA_COLUMNS + 1 for any count beyond the bound, found
    without building the d^2 products of a wide model)."""
    gate, expert = model.gate, model.expert
    eligible = (gate.m_step == "newton" and gate.logit_monomials is not None
                and expert.m_step == "least_squares" and expert.design_monomials is not None
                and model.noise.sufficient_statistics and not model.noise.shared)
    if not eligible:
        return 0
    d = model.n_features
    for monomials in (gate.logit_monomials(d), expert.design_monomials(d)):
        products: set = set()
        for i, a in enumerate(monomials):  # stop counting as soon as the bound is passed
            products.update(_product(a, b) for b in monomials[i:])
            if len(products) > MAX_DATA_COLUMNS:
                return MAX_DATA_COLUMNS + 1
    return len(_layout(model, d).keys)


def applies(model, options) -> bool:
    """True when `em` can run as this one-pass EM (see module docstring)."""
    return options.gate_newton_steps == 1 and 0 < data_columns(model) <= MAX_DATA_COLUMNS


def _combine(M, vectors):
    """[sum_j M_ij v_j for each row i]: a small matrix times a list of (n,) vectors (None
    stands for the constant feature 1, which is not read from memory)."""
    return [functools.reduce(jnp.add, [M[i, j] if v is None else M[i, j] * v
                                       for j, v in enumerate(vectors)])
            for i in range(M.shape[0])]


def _columns(F, monomials):
    """The columns of a feature matrix F (n, m) as (n,) vectors, None for the constant."""
    return [None if t == () else F[:, j] for j, t in enumerate(monomials)]


def em_by_statistics(model, X, y, weights, params, bounds, options, limit=None):
    """Run EM from `params` (see module docstring). Returns (params, n_iter, converged,
    history) like `fit.em.em`."""
    gate, expert, noise = model.gate, model.expert, model.noise
    K, k = model.n_components, model.n_experts
    f = K - 1
    lay = _layout(model, model.n_features)  # static
    D = lay.data(X, y, weights)
    m = len(lay.phi)
    total_w = jnp.sum(weights)
    # per-feature (n,) vectors: the pass is unrolled over the few components and features,
    # which XLA:CPU fuses and vectorises along n (an (n, K) layout is ~2x slower)
    d = X.shape[1]
    phi = _columns(gate.logit_features(X), gate.logit_monomials(d))
    psi = _columns(expert.design(X), expert.design_monomials(d))
    frozen_logf = None if model.frozen is None else model.frozen.log_density(X, y)
    ci, cj = np.triu_indices(f)
    r_rows, w_rows = np.arange(K), K + np.arange(f)
    c_rows = K + f + np.arange(len(ci))
    gb = (bounds[0].gate, bounds[1].gate)
    eb = (bounds[0].expert, bounds[1].expert)
    vb = (bounds[0].noise.var, bounds[1].noise.var)

    def pass_over_data(prm):
        """E-step at `prm`: L (n_L, n) and the weighted mean log-likelihood. Exponentials
        are shared: W = e / s with e = exp(z - max z); r = q / s2 with q = exp(z + log f -
        max), so ll = log(s2 / s) + max - max z."""
        var = prm.noise.var  # (k,)
        z = _combine(gate.to_coef(prm.gate), phi)  # K logits
        mu = _combine(expert.to_coef(prm.expert), psi)  # k means
        logf = [noise.log_density(y, mu[i], var[i]) for i in range(k)]
        if frozen_logf is not None:
            logf.append(frozen_logf)
        zmax = functools.reduce(jnp.maximum, z)
        e = [jnp.exp(zi - zmax) for zi in z]
        s = functools.reduce(jnp.add, e)
        a = [zi + li for zi, li in zip(z, logf, strict=True)]
        amax = functools.reduce(jnp.maximum, a)
        q = [jnp.exp(ai - amax) for ai in a]
        s2 = functools.reduce(jnp.add, q)
        ll = jnp.log(s2 / s) + amax - zmax
        r = [qi / s2 for qi in q]
        W = [ei / s for ei in e[:f]]
        C = [W[i] * ((i == j) - W[j]) for i, j in zip(ci, cj, strict=True)]
        return jnp.stack(r + W + C), jnp.sum(weights * ll) / total_w

    def gate_step(prm_gate, S, W):
        if f == 0:  # one component: its weight is 1
            return prm_gate
        coef = gate.to_coef(prm_gate)  # (K, m); the last row is pinned
        r_phi = S[r_rows[:f]][:, lay.phi]  # (f, m)
        G = r_phi - S[w_rows][:, lay.phi]  # (f, m)
        blocks = S[c_rows][:, lay.phiphi]  # (f(f+1)/2, m, m)
        H = jnp.zeros((f, f, m, m)).at[ci, cj].set(blocks).at[cj, ci].set(blocks)
        H = H.transpose(0, 2, 1, 3).reshape(f * m, f * m)

        def gain(candidate):  # exact change of Q_gate from prm_gate to the candidate
            dc = gate.to_coef(candidate)[:f] - coef[:f]
            dz = _combine(dc, phi)  # f logit changes
            lse_change = jnp.log1p(functools.reduce(
                jnp.add, [W[j] * jnp.expm1(dz[j]) for j in range(f)]))
            return jnp.sum(dc * r_phi) - jnp.sum(weights * lse_change)

        return newton_gate_move(gate, prm_gate, coef, G, H, gain, gb, options.ridge,
                                MAX_HALVINGS, RESOLVABLE * total_w)

    def expert_step(prm, S):
        Sr = S[r_rows[:k]]  # (k, n_D): the trainable experts' rows
        mass = Sr[:, lay.one]
        A, B = Sr[:, lay.psipsi], Sr[:, lay.ypsi]  # (k, p, p), (k, p)
        c = ridge_solve(A, B, options.ridge)
        old = expert.to_coef(prm.expert)
        ok = (mass > 1e-10 * jnp.sum(mass)) & jnp.all(jnp.isfinite(c), axis=1)
        ep = project(expert.from_coef(jnp.where(ok[:, None], c, old), prm.expert), eb)
        c = expert.to_coef(ep)
        sse = Sr[:, lay.yy] - 2 * jnp.sum(c * B, axis=1) + jnp.einsum("ka,kab,kb->k", c, A, c)
        var = jnp.maximum(sse, 0.0) / jnp.maximum(mass, 1e-300)
        return ep, prm.noise._replace(var=jnp.clip(var, *vb))

    def step(prm):
        L, ll = pass_over_data(prm)
        S = L @ D  # (n_L, n_D): every sum the M-step needs
        new_gate = gate_step(prm.gate, S, L[w_rows])
        ep, npar = expert_step(prm, S)
        return prm._replace(gate=new_gate, expert=ep, noise=npar), ll

    return run_em(step, params, model, bounds, options, limit)
