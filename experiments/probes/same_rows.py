"""Do two runs of the same config hold the same rows? Replicate by replicate.

    python experiments/probes/same_rows.py RUN_A RUN_B

Prints whether the (setting, n, replicate) keys, iteration counts and flags are equal, and the
largest relative difference of the objective, the log-likelihood and every metric. Used to
check that a change of how fits run (padding, batching, backends) does not change what they
compute.
"""

from __future__ import annotations

import sys

import numpy as np

from moestat.experiments.store import read_rows
from moestat.experiments.sweep import FLAGS


def _sorted_columns(out: str) -> dict[str, np.ndarray]:
    c = read_rows(out).to_pydict()
    order = sorted(range(len(c["n"])), key=lambda i: (c["setting"][i], c["n"][i],
                                                      c["replicate"][i]))
    return {k: np.asarray(v)[order] for k, v in c.items()}


def main(run_a: str, run_b: str) -> None:
    a, b = _sorted_columns(run_a), _sorted_columns(run_b)
    keys = ("setting", "n", "replicate")
    if len(a["n"]) != len(b["n"]) or not all((a[k] == b[k]).all() for k in keys):
        print("the runs hold different cells")
        return
    print(f"rows {len(a['n'])}")
    for k in ("n_iter", *FLAGS):
        print(f"{k:12s} equal: {bool((a[k] == b[k]).all())}")
    for k in sorted(a):
        if k in ("objective", "loglik") or k.startswith("metric."):
            x, y = a[k].astype(float), b[k].astype(float)
            rel = np.abs(x - y) / np.maximum(np.abs(y), 1e-300)
            print(f"{k:12s} largest relative difference {np.nanmax(rel):.2e}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
