"""Per-n statistics of one (setting, metric) of a finished run, for reading a noisy rate.

    python experiments/probes/rate_statistics.py RUN_DIR SETTING METRIC

Prints the mean-slope with and without the non-converged fits (rates.fit_rate,
drop_nonconverged), how many far-out fits (log loss > Q3 + 3 IQR at their n) did not converge,
and the mean and median loss at each n.
"""

from __future__ import annotations

import sys

import numpy as np

from moestat.experiments.store import read_rows
from moestat.rates import fit_rate


def main(out: str, setting: str, metric: str) -> None:
    t = read_rows(out).to_pydict()
    s, n = np.asarray(t["setting"]), np.asarray(t["n"])
    rep, conv = np.asarray(t["replicate"]), np.asarray(t["converged"])
    v = np.asarray(t[f"metric.{metric}"], float)
    sel = s == setting
    ns = np.unique(n[sel])
    L = np.full((ns.size, rep[sel].max() + 1), np.nan)
    C = np.ones_like(L, bool)
    for i, nv in enumerate(ns):
        m = sel & (n == nv)
        L[i, rep[m]], C[i, rep[m]] = v[m], conv[m]
    for drop in (False, True):
        r = fit_rate(ns, L, converged=C, drop_nonconverged=drop)
        label = "converged fits only" if drop else "all fits"
        print(f"{metric} mean slope, {label}: {r.slope:.3f} "
              f"[{r.ci95[0]:.3f}, {r.ci95[1]:.3f}]")
    logs = np.log(L)
    q1, q3 = np.nanpercentile(logs, [25, 75], axis=1, keepdims=True)
    far = logs > q3 + 3 * (q3 - q1)
    print(f"far-out fits: {int(far.sum())}, of which not converged: {int((far & ~C).sum())}")
    print("n:", ns.tolist())
    print("mean:", np.round(np.nanmean(L, axis=1), 4).tolist())
    print("median:", np.round(np.nanmedian(L, axis=1), 4).tolist())


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
