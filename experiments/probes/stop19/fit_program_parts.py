"""Stop 19 probe: what the fit program's compile time is made of. Compiles the contaminated
full preset's fit program (block 20, 8859 rows) with parts replaced by trivial stand-ins:
    full | no_post (no final log-likelihood / degeneracy flags) | vmap (one vmap, no lanes)
    | gate_only / expert_only (the M-step without the other block)
compiled as the sweep compiles it (moestat.compiling's options).
Run from the project root:
    .venv/bin/python experiments/probes/stop19/fit_program_parts.py VARIANT"""

import sys
import time

import jax.numpy as jnp
from block import contaminated_block

from moestat.fit import api, degeneracy, em, lanes

variant = sys.argv[1]
if variant == "no_post":
    api.mean_loglik = lambda model, params, X, y, w: jnp.sum(w) * 0.0
    api.degeneracy = lambda *a: degeneracy.Degeneracy(*(jnp.asarray(False),) * 4)
if variant == "vmap":
    lanes.lanes_per_pass = lambda n_lanes, n_rows, backend=None: n_lanes
if variant == "gate_only":
    em.update_experts = lambda model, params, *a: (params.expert, params.noise)
if variant == "expert_only":
    em.update_gate = lambda model, params, *a, **k: params.gate
setting, built, truth, X, y, w, s0, prog = contaminated_block(8859)
t = time.perf_counter()
low = prog.lower(X, y, w, s0, None)
tl = time.perf_counter() - t
t = time.perf_counter()
comp = low.compile()
tc = time.perf_counter() - t
hlo = comp.as_text()
print(f"{variant:12s} lower {tl:.2f} s compile {tc:.2f} s  optimized HLO {len(hlo) // 1000} kB, "
      f"{hlo.count(' fusion(')} fusions, {hlo.count('while(')} whiles", flush=True)
