"""Side-by-side comparison of the settings of one run for some metrics.

    python experiments/probes/compare_settings.py RUN_DIR METRIC [METRIC ...]

For each metric and setting: the mean-slope with its 95 % interval and the median slope (as in
`moestat report`), and the mean and median error at the smallest and the largest n — "a lower
curve" and "a steeper slope" are the two ways one setting can be more sample efficient.
"""

from __future__ import annotations

import sys

import numpy as np

from moestat.experiments.runner import load_resolved, report
from moestat.experiments.store import read_rows


def main(out: str, metrics: list[str]) -> None:
    config = load_resolved(out)
    rates = {(r["setting"], r["metric"]): r for r in report(out, n_boot=1000)["rates"]}
    cols = read_rows(out).to_pydict()
    s, n = np.asarray(cols["setting"]), np.asarray(cols["n"])
    for metric in metrics:
        print(f"\n{metric}")
        print(f"{'setting':22s} {'slope [95% CI]':>26s} {'median sl.':>10s} "
              f"{'mean@n_min':>11s} {'mean@n_max':>11s} {'med@n_max':>10s}")
        for st in config.settings:
            r = rates.get((st.name, metric))
            if r is None:
                continue
            v = np.asarray(cols[f"metric.{metric}"], float)
            sel = s == st.name
            lo, hi = n[sel].min(), n[sel].max()
            at_lo, at_hi = v[sel & (n == lo)], v[sel & (n == hi)]
            slope = ("error" if "error" in r else
                     f"{r['slope']:.3f} [{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}]")
            med = "" if "error" in r else f"{r['median_slope']:.3f}"
            print(f"{st.name:22s} {slope:>26s} {med:>10s} {np.nanmean(at_lo):11.4g} "
                  f"{np.nanmean(at_hi):11.4g} {np.nanmedian(at_hi):10.4g}")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2:])
