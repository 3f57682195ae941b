"""Stop 19 probe: a cold full contaminated_distinguishable sweep in this process with a
timeline: when each cell starts and ends, and each XLA compile (thread, seconds).

Run from the project root (empty cache dir):
    MOESTAT_CACHE_DIR=$(mktemp -d) .venv/bin/python experiments/probes/stop19/timeline.py OUT"""

import sys
import threading
import time

import jax

from moestat.experiments import backends, runner, sweep
from moestat.experiments.runner import prepare_out, resolve

T0 = time.perf_counter()
events = []


def listen(event, seconds, **kwargs):
    if event == "/jax/core/compile/backend_compile_duration":
        events.append((time.perf_counter() - T0, threading.current_thread().name,
                       f"compile {seconds:.2f} s"))


jax.monitoring.register_event_duration_secs_listener(listen)
run_cell = sweep.run_cell


def timed_cell(config, cell):
    events.append((time.perf_counter() - T0, "main", f"start {cell.label}"))
    out = run_cell(config, cell)
    events.append((time.perf_counter() - T0, "main", f"end   {cell.label}"))
    return out


backends.run_cell = timed_cell  # the in-process backend calls it from there
out = sys.argv[1]
cfg = resolve("experiments/contaminated_distinguishable.toml", "full", None)
prepare_out(cfg, out, False)
runner.run_sweep(cfg, out)
events.append((time.perf_counter() - T0, "main", "sweep done"))
for t, th, what in events:
    print(f"{t:7.2f} {th[:16]:16s} {what}")
