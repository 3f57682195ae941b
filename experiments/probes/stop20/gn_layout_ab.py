"""Stop 20 probe: the expert Gauss-Newton step's Jacobian in two layouts, in one process: the
fit programs of a contaminated full preset block (20 replicates, n rows, the sweep's lanes and
options), alternating ROUNDS runs; seconds min / median and how far the results differ.
  jacfwd:   fit/steps.py's gauss_newton_expert_update, J = vmap(jacfwd(h)) (k, n, p)
  rows-last: J^T (k, p, n) by vmapping jvp over the p basis directions; A = J W J^T and
             b = J W r as products over the trailing n axis

Run from the project root:
    .venv/bin/python experiments/probes/stop20/gn_layout_ab.py N [ROUNDS]"""

import sys

import jax
import jax.numpy as jnp
from ab import alternate, fit_variants, report
from jax.flatten_util import ravel_pytree

from moestat.fit import em, steps

sys.path.insert(0, "experiments/probes/stop19")
from block import contaminated_block  # noqa: E402

n = int(sys.argv[1])
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 10
setting, built, truth, X, y, w, s0, _ = contaminated_block(n)


def rows_last(expert, params, X, y, W, expert_bounds, n_steps, ridge, max_halvings=12):
    free = expert.to_free(params)
    lo, hi = expert.to_free(expert_bounds[0]), expert.to_free(expert_bounds[1])
    row = lambda tree, i: jax.tree_util.tree_map(lambda a: a[i], tree)  # noqa: E731
    _, unravel = ravel_pytree(row(free, 0))
    k = W.shape[1]
    flat = lambda tree: jax.vmap(lambda i: ravel_pytree(row(tree, i))[0])(jnp.arange(k))  # noqa: E731
    F, F_lo, F_hi = flat(free), flat(lo), flat(hi)
    p = F.shape[1]
    Wt = W.T  # (k, n)

    def h(f):
        one = jax.tree_util.tree_map(lambda a: a[None], unravel(f))
        return expert.mean(expert.from_free(one), X)[:, 0]

    def sse(F):
        s = jnp.sum(Wt * (y[None, :] - jax.vmap(h)(F)) ** 2, axis=1)
        return jnp.where(jnp.isfinite(s), s, jnp.inf)

    def jac_t(f):  # (p, n): row j = dh / df_j
        return jax.vmap(lambda e: jax.jvp(h, (f,), (e,))[1])(jnp.eye(p))

    def step(_, F):
        Jt = jax.vmap(jac_t)(F)  # (k, p, n)
        r = y[None, :] - jax.vmap(h)(F)  # (k, n)
        WJt = Jt * Wt[:, None, :]
        A = jnp.einsum("kpn,kqn->kpq", WJt, Jt)
        b = jnp.einsum("kpn,kn->kp", WJt, r)
        delta = jax.vmap(lambda A, b: steps._solve_psd(A, b, ridge))(A, b)
        return steps.halved_step(F, delta, sse, sse(F), F_lo, F_hi, max_halvings)

    F = jax.lax.fori_loop(0, n_steps, step, F)
    return expert.from_free(jax.vmap(unravel)(F))


args = (X, y, w, s0, None)
programs = fit_variants(em, "gauss_newton_expert_update",
                        {"jacfwd": steps.gauss_newton_expert_update, "rows-last": rows_last},
                        built, setting, args)
report(n, *alternate(programs, args, rounds), "jacfwd")
