"""Stop 20 probe: what a further padded size costs to build the contaminated fit program:
trace + lower (Python, holds the GIL) and XLA compile, for sizes compiled one after another
in one process, and the same via jax.export with a symbolic row count (lowered once, then
compiled per size).

Run from the project root:
    .venv/bin/python experiments/probes/stop20/trace_lower.py"""

import sys
import time

import jax
import jax.numpy as jnp
from jax import export

sys.path.insert(0, "experiments/probes/stop19")
from block import contaminated_block  # noqa: E402

SIZES = (8859, 29764, 61585, 100000)
setting, built, truth, X, y, w, s0, prog = contaminated_block(1000)
R, d = X.shape[0], X.shape[2]
f64 = jnp.float64


def specs(rows):
    return (jax.ShapeDtypeStruct((R, rows, d), f64), jax.ShapeDtypeStruct((R, rows), f64),
            jax.ShapeDtypeStruct((R, rows), f64), s0, None)


for rows in SIZES:
    t = time.perf_counter()
    traced = prog.trace(*specs(rows))
    t1 = time.perf_counter()
    low = traced.lower()
    t2 = time.perf_counter()
    low.compile()
    t3 = time.perf_counter()
    print(f"jit    rows {rows:6d} trace {t1 - t:.2f} lower {t2 - t1:.2f} compile {t3 - t2:.2f} s",
          flush=True)

if len(sys.argv) > 1:
    (n,) = export.symbolic_shape("n")
    t = time.perf_counter()
    exp = export.export(prog)(*specs(n)[:4])
    print(f"export symbolic: {time.perf_counter() - t:.2f} s", flush=True)
    for rows in SIZES:
        t = time.perf_counter()
        c = jax.jit(exp.call).lower(*specs(rows)[:4]).compile()
        print(f"export rows {rows:6d} lower+compile {time.perf_counter() - t:.2f} s", flush=True)
