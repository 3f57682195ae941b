"""Two runs of the same config or the same data, replicate by replicate (`moestat compare`).

* `same_rows(a, b)`: do two runs hold the same fits? Equal (setting, n, replicate) keys,
  iteration counts and flags, and the largest relative difference of the objective, the
  log-likelihood and every metric — to check that a change of how fits run (padding,
  batching, backends, a refactoring) does not change what they compute.
* `paired(a, b, setting, metric)`: two runs of one setting on the same data (same seed and
  setting name: replicate r has the same data in both), e.g. one near-truth start against the
  best of several: per n, how many replicates reach a higher objective in B, the mean and
  median metric in A and in B, how many fits end on a bound and how many converged in each,
  their median iterations and their fit seconds (the sum over the replicates: a cell's
  seconds per fit times its fits).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from moestat.errors import InputError
from moestat.experiments.rows import FLAGS
from moestat.experiments.runner import expected_keys
from moestat.experiments.store import read_rows


def _rows(out: Path) -> dict[str, np.ndarray]:
    """A run's rows sorted by (setting, n, replicate)."""
    table = read_rows(out, expected_keys(out))  # one line when `out` is no run directory
    if table is None:
        raise InputError(f"{out} has no finished cells")
    c = table.to_pydict()
    order = sorted(range(len(c["n"])), key=lambda i: (c["setting"][i], c["n"][i],
                                                      c["replicate"][i]))
    return {k: np.asarray(v)[order] for k, v in c.items()}


def _relative(x, y) -> float | None:
    x, y = np.asarray(x, float), np.asarray(y, float)
    both = np.isfinite(x) & np.isfinite(y)
    if (np.isfinite(x) != np.isfinite(y)).any():
        return float("inf")
    if not both.any():
        return None
    return float(np.max(np.abs(x[both] - y[both]) / np.maximum(np.abs(y[both]), 1e-300)))


def same_rows(a: Path, b: Path) -> dict:
    """{"rows", "same_keys", "equal": {column: bool}, "largest_relative_difference":
    {column: float | None}} (inf where a value is missing in one run only)."""
    ra, rb = _rows(a), _rows(b)
    keys = ("setting", "n", "replicate")
    same = len(ra["n"]) == len(rb["n"]) and all((ra[k] == rb[k]).all() for k in keys)
    out = {"rows": [len(ra["n"]), len(rb["n"])], "same_keys": bool(same), "equal": {},
           "largest_relative_difference": {}}
    if not same:
        return out
    for k in ("n_iter", *FLAGS):
        out["equal"][k] = bool((ra[k] == rb[k]).all())
    for k in sorted(set(ra) & set(rb)):
        if k in ("objective", "loglik") or k.startswith("metric."):
            out["largest_relative_difference"][k] = _relative(ra[k], rb[k])
    return out


def paired(a: Path, b: Path, setting: str, metric: str,
           setting_b: str | None = None) -> list[dict]:
    """Per n of `setting` present in both runs (module docstring); with `setting_b`, run b's
    fits of that setting instead (two settings of one run fitted to the same data: `data =`;
    their objectives compare when both are mean log-likelihoods of the same rows)."""
    ra, rb = _rows(a), _rows(b)
    col = f"metric.{metric}"
    for run, rows in ((a, ra), (b, rb)):
        if col not in rows:
            raise InputError(f"{run} has no metric {metric!r}")

    columns = ("objective", col, "at_bound", "n_iter", "converged", "fit_seconds")

    def by_replicate(rows, setting):
        sel = rows["setting"] == setting
        return {(int(n), int(r)): values for n, r, *values in zip(
            rows["n"][sel], rows["replicate"][sel], *(rows[c][sel] for c in columns),
            strict=True)}

    pa, pb = by_replicate(ra, setting), by_replicate(rb, setting_b or setting)
    both = sorted(set(pa) & set(pb))
    if not both:
        raise InputError(f"no (n, replicate) of setting {setting!r} in both runs")
    out = []
    for n in sorted({k[0] for k in both}):
        ks = [k for k in both if k[0] == n]
        oa, ma, ba, ia, ca, sa = (np.array([pa[k][i] for k in ks], float) for i in range(6))
        ob, mb, bb, ib, cb, sb = (np.array([pb[k][i] for k in ks], float) for i in range(6))
        out.append({"n": n, "replicates": len(ks),
                    "b_higher_objective": int(np.sum(ob > oa + 1e-12 * np.abs(oa))),
                    "median_objective_b_minus_a": float(np.nanmedian(ob - oa)),
                    "mean_a": float(np.nanmean(ma)), "mean_b": float(np.nanmean(mb)),
                    "median_a": float(np.nanmedian(ma)), "median_b": float(np.nanmedian(mb)),
                    "at_bound_a": int(ba.sum()), "at_bound_b": int(bb.sum()),
                    "median_iterations_a": float(np.median(ia)),
                    "median_iterations_b": float(np.median(ib)),
                    "converged_a": int(ca.sum()), "converged_b": int(cb.sum()),
                    "fit_seconds_a": float(np.sum(sa)), "fit_seconds_b": float(np.sum(sb))})
    return out
