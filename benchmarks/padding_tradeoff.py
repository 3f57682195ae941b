"""Padded sizes (moestat/padding.py): one sweep cell fitted at the size the planner chooses with
COMPILE_ROWS against the size it chooses with another constant (default 2e6, what a cheap
contaminated EM fit would justify), in one process: the padded rows, the first call (compile and
fit) and the second (fit only), and the largest difference of the replicates' objectives (the
padding rows have weight 0: rounding, or another local optimum of an over-specified fit).

Run: .venv/bin/python benchmarks/padding_tradeoff.py [study setting n [other_compile_rows]]
     (default: laplace_gate over_laplace 3162 2000000, the quick preset)
"""

from __future__ import annotations

import functools
import sys
import time

import numpy as np

from moestat import padding
from moestat.experiments import cell as cell_module
from moestat.experiments.grid import cells
from moestat.experiments.runner import resolve
from moestat.shipped import config_path


def timed_cell(config, the_cell, compile_rows: float):
    """(padded rows, first-call seconds, second-call seconds, objectives) of one cell."""
    cell_module.padded_rows = functools.partial(padding.padded_rows, compile_rows=compile_rows)
    setting = next(s for s in config.settings if s.name == the_cell.setting)
    rows = cell_module.fitted_rows(config, setting, the_cell.n)
    t0 = time.perf_counter()
    cell_module.run_cell(config, the_cell)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = cell_module.run_cell(config, the_cell)
    return rows, first, time.perf_counter() - t0, np.asarray(out["objective"], float)


def main(argv=None) -> None:
    args = list(argv if argv is not None else sys.argv[1:])
    study, setting, n = (args[:3] if len(args) >= 3 else ["laplace_gate", "over_laplace", 3162])
    other = float(args[3]) if len(args) > 3 else 2e6
    config = resolve(config_path(study), "quick", None)
    the_cell = next(c for c in cells(config) if c.setting == setting and c.n == int(n))
    results = {}
    for label, constant in (("COMPILE_ROWS", padding.COMPILE_ROWS), ("other", other)):
        rows, first, second, obj = timed_cell(config, the_cell, constant)
        results[label] = (second, obj)
        print(f"{study} {setting} n={n}, {len(obj)} replicates, compile_rows {constant:.0e} "
              f"({label}): {rows} rows, first call {first:6.1f} s, second {second:6.1f} s",
              flush=True)
    (a, oa), (b, ob) = results["COMPILE_ROWS"], results["other"]
    print(f"ratio of the second calls: {b / a:.2f}x; objectives differ by at most "
          f"{np.max(np.abs(oa - ob)):.1e} (mean log-likelihood per sample)")


if __name__ == "__main__":
    main()
