"""Empirical convergence rates (docs/losses.md, "Empirical rates").

For one (setting, metric): losses (n_values, replicates) over a grid of sample sizes n, NaN
for failed fits. The statistic (mean, or median) over replicates at each n is regressed by
ordinary least squares, log(stat) = c + s log(n); s is the empirical rate. A 95 % interval
for s comes from a seeded bootstrap that resamples replicates within each n (>= 1000
resamples, percentile interval). An optional window [n_min, n_max] restricts the fit.
Failed (NaN) fits are dropped from the statistic but counted, never silently.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import numpy as np

from moestat.errors import InputError


@dataclass(frozen=True)
class RateFit:
    slope: float
    intercept: float
    r2: float
    ci95: tuple[float, float]
    n_values: int
    replicates: int
    n_fits: int
    n_failed: int
    n_nonconverged: int
    statistic: str

    def as_dict(self) -> dict:
        d = asdict(self)
        d["ci95"] = list(self.ci95)
        return d


def _ols(logn, logy):
    """Slopes and intercepts of logy (..., N) on logn (N,), vectorised over leading axes."""
    xc = logn - logn.mean()
    slope = (logy - logy.mean(axis=-1, keepdims=True)) @ xc / (xc @ xc)
    intercept = logy.mean(axis=-1) - slope * logn.mean()
    return slope, intercept


def _stat(values, statistic):
    return np.nanmedian(values, axis=-1) if statistic == "median" else np.nanmean(values,
                                                                                  axis=-1)


def fit_rate(n, losses, *, converged=None, drop_nonconverged: bool = False,
             window: tuple[float, float] | None = None, n_boot: int = 2000, seed: int = 0,
             statistic: str = "mean") -> RateFit:
    """Rate of `losses` (n_values, replicates) against sample sizes `n` (n_values,).

    `converged` (same shape, bool) flags fits that met the stopping rule: they are always
    counted (`n_nonconverged`) and, with `drop_nonconverged`, treated as failed.
    """
    n = np.asarray(n, dtype=float)
    losses = np.asarray(losses, dtype=float)
    if losses.ndim != 2 or losses.shape[0] != n.shape[0]:
        raise InputError(f"losses must have shape (len(n), replicates), got {losses.shape}")
    conv = np.ones(losses.shape, bool) if converged is None else np.asarray(converged, bool)
    if conv.shape != losses.shape:
        raise InputError(f"converged must have the shape of losses {losses.shape}")
    if drop_nonconverged:
        losses = np.where(conv, losses, np.nan)
    if statistic not in ("mean", "median"):
        raise InputError(f"statistic must be 'mean' or 'median', got {statistic!r}")
    if n_boot < 1000:
        raise InputError(f"n_boot must be >= 1000, got {n_boot}")
    if window is not None:
        keep = (n >= window[0]) & (n <= window[1])
        n, losses, conv = n[keep], losses[keep], conv[keep]
    failed = ~np.isfinite(losses)
    if n.size < 2:
        raise InputError("a rate needs at least two sample sizes in the window")
    if np.any(failed.all(axis=1)):
        raise InputError("every fit failed at some sample size: no rate can be fitted")
    if np.any(losses[~failed] <= 0):
        raise InputError("losses must be > 0 to fit a log-log rate")
    losses = np.where(failed, np.nan, losses)
    logn = np.log(n)
    logy = np.log(_stat(losses, statistic))
    slope, intercept = _ols(logn, logy)
    resid = logy - (intercept + slope * logn)
    ss_tot = np.sum((logy - logy.mean()) ** 2)
    r2 = 1.0 - np.sum(resid**2) / ss_tot if ss_tot > 0 else 1.0

    rng = np.random.default_rng(seed)
    R = losses.shape[1]
    idx = rng.integers(0, R, size=(n_boot, n.size, R))
    boot = np.take_along_axis(np.broadcast_to(losses, (n_boot,) + losses.shape), idx, axis=2)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-failed resamples: dropped below
        stat = _stat(boot, statistic)
    ok = np.all(np.isfinite(stat) & (stat > 0), axis=1)
    slopes, _ = _ols(logn, np.log(stat[ok]))
    lo, hi = np.percentile(slopes, [2.5, 97.5])
    return RateFit(float(slope), float(intercept), float(r2), (float(lo), float(hi)),
                   int(n.size), int(R), int(losses.size), int(failed.sum()),
                   int((~conv).sum()), statistic)


def local_slopes(n, losses, width: int = 5, statistic: str = "mean"):
    """Slopes over successive windows of `width` consecutive n values: (centres, slopes).
    A rate slower than any polynomial shows as local slopes drifting toward 0."""
    n = np.asarray(n, float)
    logy = np.log(_stat(np.asarray(losses, float), statistic))
    logn = np.log(n)
    centres, slopes = [], []
    for i in range(n.size - width + 1):
        s, _ = _ols(logn[i : i + width], logy[i : i + width])
        centres.append(float(np.exp(logn[i : i + width].mean())))
        slopes.append(float(s))
    return np.asarray(centres), np.asarray(slopes)
