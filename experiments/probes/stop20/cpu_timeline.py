"""Stop 20 probe: how busy the 2 cores are during a cold full contaminated_distinguishable
sweep in this process: per 0.5 s interval, the process's CPU seconds (user + system, from
/proc/self/stat) divided by the interval, next to the cells that ran in it.

Run from the project root (empty cache dir):
    MOESTAT_CACHE_DIR=$(mktemp -d) .venv/bin/python experiments/probes/stop20/cpu_timeline.py OUT"""

import os
import sys
import threading
import time

from moestat.experiments import backends, runner, sweep
from moestat.experiments.runner import prepare_out, resolve

T0 = time.perf_counter()
TICK = os.sysconf("SC_CLK_TCK")
samples, cells = [], []


def cpu_seconds():
    with open("/proc/self/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def monitor():
    while True:
        samples.append((time.perf_counter() - T0, cpu_seconds()))
        time.sleep(0.5)


threading.Thread(target=monitor, daemon=True).start()
run_cell = sweep.run_cell


def timed_cell(config, cell):
    t = time.perf_counter() - T0
    out = run_cell(config, cell)
    cells.append((t, time.perf_counter() - T0, cell.label.split("/")[1]))
    return out


backends.run_cell = timed_cell
cfg = resolve("experiments/contaminated_distinguishable.toml", "full", None)
prepare_out(cfg, sys.argv[1], False)
runner.run_sweep(cfg, sys.argv[1])
end = time.perf_counter() - T0
samples.append((end, cpu_seconds()))
for (t0, c0), (t1, c1) in zip(samples, samples[1:], strict=False):
    here = sorted({c for a, b, c in cells if a < t1 and b > t0}, key=lambda s: int(s[2:]))
    print(f"{t0:6.1f}-{t1:5.1f} s  cores busy {(c1 - c0) / (t1 - t0):4.2f}  {' '.join(here)}")
print(f"sweep {end:.1f} s, CPU {samples[-1][1]:.1f} s: {samples[-1][1] / end:.2f} cores on average")
