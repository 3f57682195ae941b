"""Stop 18 probe: tall-skinny products at (20, 1e5, 8), each jitted alone (X^T c X, X^T X, ...).

Run from the project root: .venv/bin/python experiments/probes/stop18/stop18_gate_micro2.py"""

import time

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)
B, n, d = 20, 100000, 8
k = jax.random.split(jax.random.PRNGKey(0), 4)
X = jax.random.normal(k[0], (B, n, d))
r = jax.random.uniform(k[1], (B, n))
w = jnp.ones((B, n))
c = jax.random.uniform(k[2], (B, n))
beta = jnp.full((B, d), 0.35)
tau = jnp.ones(B)


def timeit(name, f, *a, vm=True):
    f = jax.jit(jax.vmap(f) if vm else f)
    jax.block_until_ready(f(*a))
    ts = []
    for _ in range(7):
        t = time.perf_counter()
        out = jax.block_until_ready(f(*a))
        ts.append(time.perf_counter() - t)
    print(f"{name:30s} {min(ts) * 1e3:7.1f} ms  med {np.median(ts) * 1e3:7.1f}", flush=True)
    return out


timeit("sigmoid", lambda X, b, t: jax.nn.sigmoid(X @ b + t), X, beta, tau)
timeit("softplus", lambda X, b, t: jax.nn.softplus(X @ b + t), X, beta, tau)
timeit("exp", lambda X, b, t: jnp.exp(X @ b + t), X, beta, tau)
timeit("tanh", lambda X, b, t: jnp.tanh(X @ b + t), X, beta, tau)
timeit("log1p(exp(-|z|))", lambda X, b, t: jnp.log1p(jnp.exp(-jnp.abs(X @ b + t))), X, beta, tau)
timeit("XtcX", lambda X, c: X.T @ (c[:, None] * X), X, c)
timeit("XtcX einsum", lambda X, c: jnp.einsum("ni,n,nj->ij", X, c, X), X, c)
timeit("XtX", lambda X: X.T @ X, X)
timeit("Xt v", lambda X, c: X.T @ c, X, c)


def chunked(X, c, b=1000):
    Xc = (c[:, None] * X).reshape(-1, b, d)
    Xr = X.reshape(-1, b, d)
    return jnp.einsum("kbi,kbj->ij", Xr, Xc)


timeit("XtcX chunked einsum", chunked, X, c)


def chunked2(X, c, b=1000):
    Xc = (c[:, None] * X).reshape(-1, b, d)
    Xr = X.reshape(-1, b, d)
    return jnp.einsum("kbi,kbj->kij", Xr, Xc).sum(0)


timeit("XtcX chunked batch", chunked2, X, c)
timeit(
    "XtcX all-batch einsum",
    lambda X, c: jnp.einsum("Bni,Bnj->Bij", X, c[..., None] * X),
    X,
    c,
    vm=False,
)


def outer(X, c):
    return jnp.sum(c[:, None, None] * X[:, :, None] * X[:, None, :], axis=0)


timeit("outer-sum (fused reduce)", outer, X, c)


def upper(X, c):
    iu = np.triu_indices(d)
    P = X[:, iu[0]] * X[:, iu[1]]  # (n, 36)
    return c @ P


timeit("c @ triu products", upper, X, c)
