"""Stop 19 probe: the gate Hessian's tall-skinny product P^T A, P (2e5, 9), A (2e5, 10), float64,
in NumPy and in XLA (default and loop emitters, einsum, blocked), ms per product (30 calls).

Run from the project root: .venv/bin/python experiments/probes/stop19/dot_speed.py"""

import time

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)
n = 200_000
rng = np.random.default_rng(0)
P, A = rng.random((n, 9)), rng.random((n, 10))
Pj, Aj = jnp.asarray(P), jnp.asarray(A)


def ms(f, *a, reps=30):
    f(*a)
    t = time.perf_counter()
    for _ in range(reps):
        r = f(*a)
    jax.block_until_ready(r)
    return (time.perf_counter() - t) / reps * 1e3


legacy = {"xla_cpu_use_fusion_emitters": False}
print(f"numpy P^T A       {ms(lambda p, a: p.T @ a, P, A):.2f} ms")
print(f"xla P^T A         {ms(jax.jit(lambda p, a: p.T @ a), Pj, Aj):.2f} ms")
loop = jax.jit(lambda p, a: p.T @ a, compiler_options=legacy)
print(f"xla loop emitters {ms(loop, Pj, Aj):.2f} ms")
print(f"xla einsum        {ms(jax.jit(lambda p, a: jnp.einsum('ti,tj->ij', p, a)), Pj, Aj):.2f} ms")
blocked = jax.jit(lambda p, a: jnp.einsum("bti,btj->ij", p.reshape(50, -1, 9),
                                          a.reshape(50, -1, 10)))
print(f"xla blocked       {ms(blocked, Pj, Aj):.2f} ms")
