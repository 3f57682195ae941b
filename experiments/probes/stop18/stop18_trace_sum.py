"""Stop 18 probe: per-op totals of the trace written by stop18_trace_probe.py.

Run from the project root: .venv/bin/python experiments/probes/stop18/stop18_trace_sum.py"""

import collections
import glob
import gzip
import json
import sys

d = json.load(
    gzip.open(sorted(glob.glob("/tmp/s18/trace/plugins/profile/*/perfetto_trace.json.gz"))[-1])
)
ev = d["traceEvents"] if isinstance(d, dict) else d
agg = collections.defaultdict(lambda: [0, 0.0])
for e in ev:
    if e.get("ph") == "X":
        agg[e["name"]][0] += 1
        agg[e["name"]][1] += e.get("dur", 0)
ops = {k: v for k, v in agg.items() if not k.startswith("$") and not k.startswith("Thunk")}
print(
    "block_until_ready {:.1f} ms, sum of ops {:.1f} ms".format(
        agg["$api.py:2479 block_until_ready"][1] / 1e3, sum(v[1] for v in ops.values()) / 1e3
    )
)
for k, v in sorted(ops.items(), key=lambda kv: -kv[1][1])[
    : int(sys.argv[1]) if len(sys.argv) > 1 else 12
]:
    print(f"{v[1] / 1e3:9.1f} ms {v[0]:5d}  {k[:110]}")
