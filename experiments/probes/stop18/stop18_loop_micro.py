"""Stop 18 probe: gate-step pieces at (20, 1e5, 8) inside a 10-iteration loop (Q acceptance
forms, log-sigmoids, Gram products).

Run from the project root: .venv/bin/python experiments/probes/stop18/stop18_loop_micro.py"""

import time

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)
B, n, d = 20, 100000, 8
L = 10
k = jax.random.split(jax.random.PRNGKey(0), 4)
X = jax.random.normal(k[0], (B, n, d))
r = jax.random.uniform(k[1], (B, n))
w = jnp.ones((B, n))
beta = jnp.full((B, d), 0.35)
tau = jnp.ones(B)


def timeit(name, f, *a):
    # f(X, beta, tau, r, w) -> pytree; loop L times with beta depending on output
    def looped(X, beta, tau, r, w):
        def body(i, bt):
            b, t = bt
            out = f(X, b, t, r, w)
            s = sum(jnp.sum(o) for o in jax.tree_util.tree_leaves(out))
            return b + 1e-30 * s, t

        return jax.lax.fori_loop(0, L, body, (beta, tau))

    g = jax.jit(jax.vmap(looped))
    jax.block_until_ready(g(*a))
    ts = []
    for _ in range(5):
        t = time.perf_counter()
        jax.block_until_ready(g(*a))
        ts.append(time.perf_counter() - t)
    print(
        f"{name:30s} {min(ts) / L * 1e3:7.1f} ms/iter  med {np.median(ts) / L * 1e3:7.1f}",
        flush=True,
    )


A = (X, beta, tau, r, w)
timeit("nothing (X@beta)", lambda X, b, t, r, w: X @ b, *A)
timeit(
    "logsig x2",
    lambda X, b, t, r, w: (lambda z: jnp.stack([jax.nn.log_sigmoid(z), jax.nn.log_sigmoid(-z)], 1))(
        X @ b + t
    ),
    *A,
)
timeit(
    "logsig x1",
    lambda X, b, t, r, w: (lambda z: (lambda a: jnp.stack([a, a - z], 1))(jax.nn.log_sigmoid(z)))(
        X @ b + t
    ),
    *A,
)


def concat_phi(X):
    return jnp.concatenate([X, jnp.ones((X.shape[0], 1))], axis=1)


def gate_cur(X, beta, tau, r, w):
    Phi = concat_phi(X)
    n, m = Phi.shape
    z = X @ beta + tau
    W1 = jax.nn.sigmoid(z)
    W = jnp.stack([W1, 1 - W1], 1)
    resp = jnp.stack([r, 1 - r], 1)
    f = 1
    C = W[:, :f, None] * (jnp.eye(f) - W[:, None, :f]) * w[:, None, None]
    CPhi = (C.reshape(n, 1, 1) * Phi[:, None, :]).reshape(n, m)
    return Phi.T @ jnp.concatenate([(resp[:, :f] - W[:, :f]) * w[:, None], CPhi], axis=1)


timeit("gate GH current", gate_cur, *A)


def gate_sep(X, beta, tau, r, w):
    z = X @ beta + tau
    p = jax.nn.sigmoid(z)
    g = w * (r - p)
    c = w * p * (1 - p)
    return X.T @ (c[:, None] * X), X.T @ c, X.T @ g, g.sum(), c.sum()


timeit("gate sep X", gate_sep, *A)


def gate_one(X, beta, tau, r, w):
    z = X @ beta + tau
    p = jax.nn.sigmoid(z)
    g = w * (r - p)
    c = w * p * (1 - p)
    return X.T @ jnp.concatenate([c[:, None] * X, jnp.stack([c, g], 1)], axis=1), g.sum(), c.sum()


timeit("gate one product X", gate_one, *A)


def gate_outer(X, beta, tau, r, w):
    z = X @ beta + tau
    p = jax.nn.sigmoid(z)
    g = w * (r - p)
    c = w * p * (1 - p)
    return jnp.sum(c[:, None, None] * X[:, :, None] * X[:, None, :], axis=0), X.T @ jnp.stack(
        [c, g], 1
    )


timeit("gate outer-sum", gate_outer, *A)


def Qcur(X, beta, tau, r, w):
    Phi = concat_phi(X)
    coef = jnp.stack([jnp.concatenate([beta, tau[None]]), jnp.zeros(9)])
    resp = jnp.stack([r, 1 - r], 1)
    z = Phi @ coef.T
    return jnp.sum(w * (jnp.sum(resp * z, axis=1) - jax.nn.logsumexp(z, axis=1)))


timeit("Q current", Qcur, *A)


def Qf1(X, beta, tau, r, w):
    z = X @ beta + tau
    return jnp.sum(w * (r * z - jnp.logaddexp(z, 0.0)))


timeit("Q f=1 logaddexp", Qf1, *A)


def Qf1b(X, beta, tau, r, w):
    z = X @ beta + tau
    return jnp.sum(w * (r * z - jax.nn.softplus(z)))


timeit("Q f=1 softplus", Qf1b, *A)


def gn(X, eta, tau, r, w):
    def h(e):
        return jnp.tanh(X @ e)
    J = jax.jacfwd(h)(eta)
    res = r - h(eta)
    return jnp.einsum("np,n,nq->pq", J, w, J), jnp.einsum("np,n,n->p", J, w, res)


timeit("expert GN jacfwd", gn, *A)


def gn2(X, eta, tau, r, w):
    t = jnp.tanh(X @ eta)
    s = 1 - t * t
    res = r - t
    return X.T @ jnp.concatenate([(w * s * s)[:, None] * X, (w * s * res)[:, None]], 1)


timeit("expert GN manual one product", gn2, *A)


def gn3(X, eta, tau, r, w):
    t = jnp.tanh(X @ eta)
    s = 1 - t * t
    res = r - t
    return jnp.sum((w * s * s)[:, None, None] * X[:, :, None] * X[:, None, :], axis=0), X.T @ (
        w * s * res
    )


timeit("expert GN manual outer-sum", gn3, *A)
