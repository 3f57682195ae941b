"""Two runs of the same setting and data (same seed and setting name), replicate by replicate.

    python experiments/probes/paired_runs.py RUN_A RUN_B SETTING METRIC

For each n present in both: the replicates in both, how many have a higher objective in B
(by more than 1e-12 relative), the mean and median METRIC in A and in B over those replicates,
and how many fits end on a bound (`at_bound`) in each. Used to compare estimators on the
same data (e.g. one near-truth start against the best of several).
"""

from __future__ import annotations

import sys

import numpy as np

from moestat.experiments.store import read_rows


def _by_replicate(out: str, setting: str, metric: str) -> dict:
    c = read_rows(out).to_pydict()
    key = f"metric.{metric}"
    return {(n, r): (obj, m, b)
            for s, n, r, obj, m, b in zip(c["setting"], c["n"], c["replicate"], c["objective"],
                                          c[key], c["at_bound"], strict=True)
            if s == setting}


def main(run_a: str, run_b: str, setting: str, metric: str) -> None:
    a, b = _by_replicate(run_a, setting, metric), _by_replicate(run_b, setting, metric)
    both = sorted(set(a) & set(b))
    if not both:
        raise SystemExit(f"no (n, replicate) of setting {setting!r} in both runs")
    print(f"{setting} {metric}: A = {run_a}, B = {run_b}")
    print(f"{'n':>8s} {'reps':>4s} {'B higher obj':>12s} {'mean A':>10s} {'mean B':>10s} "
          f"{'median A':>10s} {'median B':>10s} {'bound A':>7s} {'bound B':>7s}")
    for n in sorted({k[0] for k in both}):
        ks = [k for k in both if k[0] == n]
        oa, ma, ba = (np.array([a[k][i] for k in ks], float) for i in range(3))
        ob, mb, bb = (np.array([b[k][i] for k in ks], float) for i in range(3))
        higher = int(np.sum(ob > oa + 1e-12 * np.abs(oa)))
        print(f"{n:8d} {len(ks):4d} {higher:12d} {np.nanmean(ma):10.4g} {np.nanmean(mb):10.4g} "
              f"{np.nanmedian(ma):10.4g} {np.nanmedian(mb):10.4g} {int(ba.sum()):7d} "
              f"{int(bb.sum()):7d}")


if __name__ == "__main__":
    if len(sys.argv) != 5:
        raise SystemExit(__doc__)
    main(*sys.argv[1:])
