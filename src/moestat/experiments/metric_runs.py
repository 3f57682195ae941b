"""One (setting, metric) of a run's rows as matrices over (n, replicate), and what the rules of
moestat/verdicts.py read from them: fits at max_iter and the init floor."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from moestat.experiments.config import ExperimentConfig
from moestat.verdicts import Evidence


@dataclass(frozen=True)
class MetricRuns:
    """ns (N,) sample sizes; losses (N, R) the metric at the fit (NaN where failed or not run);
    start (N, R) at the near-truth start (NaN where not recorded); converged, at_max_iter and
    ran (N, R) flags. R counts the replicates run at some n (a partial run's others are left
    out)."""

    ns: np.ndarray
    losses: np.ndarray
    start: np.ndarray
    converged: np.ndarray
    at_max_iter: np.ndarray
    ran: np.ndarray

    @property
    def n_fits(self) -> int:
        return int(self.ran.sum())

    @property
    def decades(self) -> float:
        return float(np.log10(self.ns[-1] / self.ns[0])) if self.ns.size else 0.0

    def floor(self, largest: bool = True) -> dict | None:
        """At the largest (else the smallest) n with recorded starts: the medians over
        replicates of the start and final errors and of their ratio final / start (None: no
        near-truth starts)."""
        ok = np.isfinite(self.start) & np.isfinite(self.losses) & (self.start > 0)
        rows = np.flatnonzero(ok.any(axis=1))
        if rows.size == 0:
            return None
        i = rows[-1] if largest else rows[0]
        keep = ok[i]
        return {"n": int(self.ns[i]),
                "start_median": float(np.median(self.start[i, keep])),
                "final_median": float(np.median(self.losses[i, keep])),
                "ratio": float(np.median(self.losses[i, keep] / self.start[i, keep]))}

    def finite_rows(self) -> np.ndarray:
        """(N,) bool: sample sizes with at least one finite loss."""
        return np.isfinite(self.losses).any(axis=1)

    def final_median(self, n) -> float:
        """Median over replicates of the finite losses at sample size n."""
        row = self.losses[np.flatnonzero(self.ns == n)[0]]
        return float(np.median(row[np.isfinite(row)]))

    def evidence(self) -> Evidence:
        floor = self.floor()
        rows = np.flatnonzero(self.finite_rows())
        grows = bool(rows.size >= 2 and self.final_median(self.ns[rows[-1]])
                     > self.final_median(self.ns[rows[0]]))
        return Evidence(n_fits=self.n_fits, n_at_max_iter=int(self.at_max_iter.sum()),
                        floor_ratio=None if floor is None else floor["ratio"],
                        replicates=int(self.losses.shape[1]), decades=self.decades,
                        grows=grows)


def metric_runs(cols: dict, config: ExperimentConfig, setting: str, metric: str) -> MetricRuns:
    """The MetricRuns of (setting, metric) from a run's rows `cols` (column -> list)."""
    max_iter = next(s.max_iter for s in config.settings if s.name == setting)
    sel = np.asarray(cols["setting"]) == setting
    n, rep = np.asarray(cols["n"]), np.asarray(cols["replicate"])
    conv = np.asarray(cols["converged"])
    n_iter = np.asarray(cols["n_iter"])
    vals = _floats(cols.get(f"metric.{metric}"), n.size)
    starts = _floats(cols.get(f"start.{metric}"), n.size)
    ns = np.unique(n[sel])
    shape = (ns.size, config.replicates)
    L, S = np.full(shape, np.nan), np.full(shape, np.nan)
    C, M, ran = np.ones(shape, bool), np.zeros(shape, bool), np.zeros(shape, bool)
    for i, nv in enumerate(ns):
        m = sel & (n == nv)
        r = rep[m]
        L[i, r], S[i, r], C[i, r], ran[i, r] = vals[m], starts[m], conv[m], True
        M[i, r] = n_iter[m] >= max_iter
    keep = ran.any(axis=0)  # replicates run at some n
    return MetricRuns(ns, L[:, keep], S[:, keep], C[:, keep], M[:, keep], ran[:, keep])


def _floats(column, size: int) -> np.ndarray:
    """A nullable column as floats (NaN for null; all NaN when the column is absent, e.g.
    cells written before start metrics were recorded)."""
    if column is None:
        return np.full(size, np.nan)
    return np.asarray([np.nan if v is None else v for v in column], float)
