"""Stop 20 probe: where a contaminated EM fit spends its time, per XLA operation. Runs the fit
program of one full-preset block (20 replicates, n rows, the sweep's lanes, exactly 7
iterations: tol < 0) once under jax.profiler and sums each operation's time over the run;
prints the TOP heaviest with their shapes and JAX op names (from the compiled HLO).

Run from the project root (PYTHONPATH=<other src> to profile another version):
    .venv/bin/python experiments/probes/stop20/fit_profile.py N [TOP]"""

import collections
import glob
import gzip
import json
import re
import sys
import tempfile

import jax

from moestat.fit import api
from moestat.fit.result import FitOptions

sys.path.insert(0, "experiments/probes/stop19")
from block import contaminated_block  # noqa: E402

n = int(sys.argv[1])
top = int(sys.argv[2]) if len(sys.argv) > 2 else 25
setting, built, truth, X, y, w, s0, _ = contaminated_block(n)
prog = api._compiled(built.fit_model, "em", FitOptions(max_iter=7, tol=-1.0), True)
compiled = prog.lower(X, y, w, s0, None).compile()
hlo = {line.split("=")[0].strip().lstrip("%"): line for line in compiled.as_text().splitlines()
       if line.strip().startswith("%")}
jax.block_until_ready(compiled(X, y, w, s0, None))
out = tempfile.mkdtemp()
with jax.profiler.trace(out, create_perfetto_trace=True):
    jax.block_until_ready(compiled(X, y, w, s0, None))
trace = sorted(glob.glob(f"{out}/**/*.trace.json.gz", recursive=True))[-1]
seconds, calls = collections.defaultdict(float), collections.Counter()
for e in json.load(gzip.open(trace))["traceEvents"]:
    if e.get("ph") == "X" and e["name"] in hlo:
        seconds[e["name"]] += e.get("dur", 0) / 1e6
        calls[e["name"]] += 1
total = sum(seconds.values())
print(f"n {n}: {total:.3f} s in {len(seconds)} XLA operations")
for name, s in sorted(seconds.items(), key=lambda kv: -kv[1])[:top]:
    line = hlo[name]
    shape = line.split("=", 1)[1].split()[0]
    op = re.search(r'op_name="([^"]*)"', line)
    op = op.group(1).split("/")[-1] if op else ""
    print(f"{s * 1e3:7.1f} ms {100 * s / total:4.1f}% x{calls[name]:<4d} {name:34s} {shape:24s} "
          f"{op}")
