"""Samples needed to reach the same error: setting B against a baseline setting A.

    python experiments/probes/sample_efficiency.py RUN_DIR METRIC BASELINE OTHER [OTHER ...]

For each setting: the median error over replicates at every n, and the least-squares line of
log(median error) on log n. The target error is the baseline's median error at its largest
n; for every setting, the sample size at which its line reaches that target (n_target) and
the ratio n_target / n_target(baseline): < 1 means fewer samples for the same error. Medians,
not means: a few wandering over-fitted atoms would otherwise decide the comparison.
"""

from __future__ import annotations

import sys

import numpy as np

from moestat.experiments.store import read_rows


def median_curve(cols, setting, metric):
    s, n = np.asarray(cols["setting"]), np.asarray(cols["n"])
    v = np.asarray(cols[f"metric.{metric}"], float)
    ns = np.unique(n[s == setting])
    med = np.array([np.nanmedian(v[(s == setting) & (n == x)]) for x in ns])
    return ns, med


def main(argv: list[str]) -> None:
    run, metric, baseline, *others = argv
    cols = read_rows(run).to_pydict()
    ns, med = median_curve(cols, baseline, metric)
    target = med[-1]
    print(f"{metric}: target = median error of {baseline} at n = {ns[-1]}: {target:.4g}")
    print(f"{'setting':22s} {'median slope':>12s} {'err@n_min':>10s} {'err@n_max':>10s} "
          f"{'n to target':>12s} {'ratio':>7s}")
    base_n = None
    for setting in [baseline, *others]:
        ns, med = median_curve(cols, setting, metric)
        ok = np.isfinite(med) & (med > 0)
        if ok.sum() < 2:
            print(f"{setting:22s} fewer than 2 sample sizes with results")
            continue
        slope, icpt = np.polyfit(np.log(ns[ok]), np.log(med[ok]), 1)
        n_target = float(np.exp((np.log(target) - icpt) / slope)) if slope < 0 else np.inf
        base_n = n_target if base_n is None else base_n
        print(f"{setting:22s} {slope:12.3f} {med[0]:10.4g} {med[-1]:10.4g} {n_target:12.4g} "
              f"{n_target / base_n:7.3f}")


if __name__ == "__main__":
    main(sys.argv[1:])
