"""Stop 18 probe: E-step + gate and expert normal equations, one pass vs a scan over row chunks.

Run from the project root: .venv/bin/python experiments/probes/stop18/stop18_chunk_proto.py"""

import time

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)
B, n, d = 20, 100000, 8
L = 7
k = jax.random.split(jax.random.PRNGKey(0), 4)
X = jax.random.normal(k[0], (B, n, d))
y = jax.random.normal(k[1], (B, n))
w = jnp.ones((B, n))
beta = jnp.full((B, d), 0.35)
tau = jnp.ones(B)
eta = jnp.zeros((B, d)).at[:, 0].set(-1.0)


def stats_row(X, y, w, beta, tau, eta):
    # E-step + gate G,H + expert A,b for a block of rows (any leading n)
    z = X @ beta + tau
    t = jnp.log1p(jnp.exp(-jnp.abs(z)))
    lw1, lw0 = jnp.minimum(z, 0) - t, jnp.minimum(-z, 0) - t
    h = jnp.tanh(X @ eta)
    l1 = lw1 - 0.5 * (y - h) ** 2 / 0.001 - 0.5 * jnp.log(2 * jnp.pi * 0.001)
    h0 = jnp.tanh(X[..., 0])
    s0 = jnp.sqrt(0.0005)
    l0 = lw0 - jnp.abs(y - h0) / s0 - jnp.log(2 * s0)
    m = jnp.maximum(l1, l0)
    ll = m + jnp.log(jnp.exp(l1 - m) + jnp.exp(l0 - m))
    r = jnp.exp(l1 - ll)
    p = jnp.exp(lw1)
    g = w * (r - p)
    c = w * p * (1 - p)
    Phi = jnp.concatenate([X, jnp.ones(X.shape[:-1] + (1,))], -1)
    GH = Phi.T @ jnp.concatenate([g[:, None], c[:, None] * Phi], 1)
    R = w * r
    s = 1 - h * h
    J = s[:, None] * X
    Ab = J.T @ jnp.concatenate([R[:, None] * J, (R * (y - h))[:, None]], 1)
    return jnp.sum(w * ll), GH, Ab


def direct(X, y, w, beta, tau, eta):
    return stats_row(X, y, w, beta, tau, eta)


def chunked(c):
    def f(X, y, w, beta, tau, eta):
        Xc = X.reshape(-1, c, d)
        yc = y.reshape(-1, c)
        wc = w.reshape(-1, c)

        def body(acc, xs):
            out = stats_row(*xs, beta, tau, eta)
            return jax.tree_util.tree_map(jnp.add, acc, out), None

        init = jax.tree_util.tree_map(
            jnp.zeros_like, jax.eval_shape(stats_row, Xc[0], yc[0], wc[0], beta, tau, eta)
        )
        acc, _ = jax.lax.scan(body, init, (Xc, yc, wc))
        return acc

    return f


def timeit(name, f, vmap_outside=True):
    def looped(X, y, w, beta, tau, eta):
        def body(i, b):
            out = f(X, y, w, b, tau, eta)
            s = sum(jnp.sum(o) for o in jax.tree_util.tree_leaves(out))
            return b + 1e-30 * s

        return jax.lax.fori_loop(0, L, body, beta)

    g = jax.jit(jax.vmap(looped))
    jax.block_until_ready(g(X, y, w, beta, tau, eta))
    ts = []
    for _ in range(5):
        t = time.perf_counter()
        jax.block_until_ready(g(X, y, w, beta, tau, eta))
        ts.append(time.perf_counter() - t)
    print(
        f"{name:34s} {min(ts) / L * 1e3:7.1f} ms/iter  med {np.median(ts) / L * 1e3:7.1f}",
        flush=True,
    )


timeit("direct", direct)
for c in [500, 2000, 5000, 20000]:
    timeit(f"chunked {c}", chunked(c))
