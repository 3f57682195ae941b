"""Stop 20 probe: what the first block of a cold full contaminated_distinguishable sweep waits
for. Logs, with the time since start and the thread, every XLA compile (program name and
seconds, from JAX's compile log) and each cell's start and end; stops after the first
N_CELLS cells (default 2).

Run from the project root (empty cache dir):
    MOESTAT_CACHE_DIR=$(mktemp -d) .venv/bin/python experiments/probes/stop20/first_block.py \
        OUT [N_CELLS]"""

import logging
import re
import sys
import threading
import time
import traceback

import jax

T0 = time.perf_counter()
jax.config.update("jax_log_compiles", True)
from moestat.experiments import backends, runner, sweep  # noqa: E402
from moestat.experiments.runner import prepare_out, resolve  # noqa: E402

events = []


class Compiles(logging.Handler):
    def emit(self, record):
        m = re.match(r"Finished XLA compilation of (\S+) in ([0-9.]+) sec", record.getMessage())
        if m:
            where = [f"{f.filename.split('/')[-1]}:{f.lineno}" for f in traceback.extract_stack()
                     if "/moestat/" in f.filename][-1:]
            what = f"compile {m.group(1):28s} {float(m.group(2)):.2f} s  {' '.join(where)}"
            events.append((time.perf_counter() - T0, threading.current_thread().name, what))


logging.getLogger("jax").addHandler(Compiles())
logging.getLogger("jax").propagate = False
run_cell = sweep.run_cell
n_cells = int(sys.argv[2]) if len(sys.argv) > 2 else 2


class Enough(BaseException):
    pass


def timed_cell(config, cell):
    events.append((time.perf_counter() - T0, "main", f"start {cell.label}"))
    out = run_cell(config, cell)
    events.append((time.perf_counter() - T0, "main", f"end   {cell.label}"))
    if sum(e[2].startswith("end") for e in events) >= n_cells:
        raise Enough
    return out


backends.run_cell = timed_cell
out = sys.argv[1]
cfg = resolve("experiments/contaminated_distinguishable.toml", "full", None)
prepare_out(cfg, out, False)
try:
    runner.run_sweep(cfg, out)
except Enough:
    pass
for t, th, what in events:
    print(f"{t:7.2f} {th[:16]:16s} {what}")
