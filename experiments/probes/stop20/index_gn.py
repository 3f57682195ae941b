"""Stop 20 probe: an index-model Gauss-Newton step for the ridge_nobias expert (J = act'(X eta) X
formed directly, A and b from one product X^T [W g^2 X | W g r]) against fit/steps.py's jacfwd
step: the contaminated block's fit program for 7 iterations (tol < 0) and to convergence,
alternating twice; seconds per block and how far the results differ.

Run from the project root:
    .venv/bin/python experiments/probes/stop20/index_gn.py N"""

import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from moestat.activations import get_activation
from moestat.fit import api, em
from moestat.fit.result import FitOptions
from moestat.fit.steps import _solve_psd, halved_step

sys.path.insert(0, "experiments/probes/stop19")
from block import contaminated_block  # noqa: E402


def index_gn(expert, params, X, y, W, expert_bounds, n_steps, ridge, max_halvings=12):
    act = get_activation(expert.activation)
    C = params.eta
    lo, hi = expert_bounds[0].eta, expert_bounds[1].eta
    m = C.shape[1]

    def sse(C):
        s = jnp.sum(W * (y[:, None] - act(X @ C.T)) ** 2, axis=0)
        return jnp.where(jnp.isfinite(s), s, jnp.inf)

    def step(_, C):
        u = X @ C.T
        h, g = jax.jvp(act, (u,), (jnp.ones_like(u),))
        r = y[:, None] - h
        Wg = W * g
        M = jnp.concatenate([(Wg * g)[:, :, None] * X[:, None, :], (Wg * r)[:, :, None]],
                            axis=2)
        AB = jnp.einsum("na,nkb->kab", X, M)
        A, b = AB[:, :, :m], AB[:, :, m]
        delta = jax.vmap(lambda A, b: _solve_psd(A, b, ridge))(A, b)
        s0 = jnp.sum(W * r ** 2, axis=0)
        return halved_step(C, delta, sse, jnp.where(jnp.isfinite(s0), s0, jnp.inf), lo, hi,
                           max_halvings)

    return params._replace(eta=jax.lax.fori_loop(0, n_steps, step, C))


n = int(sys.argv[1])
setting, built, truth, X, y, w, s0, _ = contaminated_block(n)
original = em.gauss_newton_expert_update
res = {}
for v in ["jacfwd", "index", "jacfwd", "index"]:
    em.gauss_newton_expert_update = original if v == "jacfwd" else index_gn
    api._compiled.cache_clear()
    for name, opts in (("7 iterations", FitOptions(max_iter=7, tol=-1.0)),
                       ("converged", FitOptions(max_iter=50, tol=1e-8))):
        prog = api._compiled(built.fit_model, "em", opts, True)
        r = jax.block_until_ready(prog(X, y, w, s0, None))
        ts = []
        for _ in range(4):
            t = time.perf_counter()
            jax.block_until_ready(prog(X, y, w, s0, None))
            ts.append(time.perf_counter() - t)
        res[(v, name)] = r
        print(f"{v:7s} {name:12s} {min(ts):.3f} s per block", flush=True)
a, b = res[("jacfwd", "converged")], res[("index", "converged")]
print("max |d eta|", float(jnp.max(jnp.abs(a.params.expert.eta - b.params.expert.eta))),
      "max |d objective|", float(jnp.max(jnp.abs(a.objective - b.objective))),
      "n_iter equal", bool(np.array_equal(a.n_iter, b.n_iter)))
