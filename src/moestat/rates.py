"""Empirical convergence rates (docs/losses.md, "Empirical rates").

For one (setting, metric): losses (n_values, replicates) over a grid of sample sizes n, NaN
for failed fits. The statistic (mean, or median) over replicates at each n is regressed by
ordinary least squares, log(stat) = c + s log(n); s is the empirical rate. A 95 % interval
for s comes from a seeded bootstrap that resamples replicates within each n (>= 1000
resamples, percentile interval). An optional window [n_min, n_max] restricts the fit.
Failed (NaN) fits are dropped from the statistic but counted, never silently.

Two settings fitted to the same replicates (a paired contrast) get the interval of their slope
difference from a bootstrap that resamples the same replicates in both (`slope_difference`).
Slower than polynomial or a slow polynomial: `power_vs_log` fits log err = c - a log n and
log err = c - b log log n to every replicate's loss and compares their Gaussian likelihoods.
"""

from __future__ import annotations

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
    """Median or mean over the last axis ignoring NaN; NaN where every value is NaN — without
    numpy's all-NaN RuntimeWarning, so that no caller has to silence warnings (filters are
    process-wide: silencing them races with other threads, e.g. the CLI's plotting import)."""
    values = np.asarray(values, float)
    empty = np.isnan(values).all(axis=-1)
    safe = np.where(empty[..., None], 0.0, values)
    out = np.nanmedian(safe, axis=-1) if statistic == "median" else np.nanmean(safe, axis=-1)
    return np.where(empty, np.nan, out)


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

    R = losses.shape[1]
    idx = np.random.default_rng(seed).integers(0, R, size=(n_boot, n.size, R))
    lo, hi = interval95(boot_slopes(logn, losses, idx, statistic))
    return RateFit(float(slope), float(intercept), float(r2), (float(lo), float(hi)),
                   int(n.size), int(R), int(losses.size), int(failed.sum()),
                   int((~conv).sum()), statistic)


def interval95(draws) -> tuple[float, float]:
    """The 2.5 and 97.5 percentiles of the finite bootstrap draws."""
    draws = np.asarray(draws, float)
    draws = draws[np.isfinite(draws)]
    if draws.size == 0:
        raise InputError("no bootstrap resample gave a finite value")
    lo, hi = np.percentile(draws, [2.5, 97.5])
    return float(lo), float(hi)


def boot_slopes(logn, losses, idx, statistic: str):
    """Slopes of the statistic of `losses` (N, R) resampled by replicate indices idx
    (B, N, R): (B,), NaN where a resample's statistic is not positive and finite."""
    boot = np.take_along_axis(np.broadcast_to(losses, idx.shape[:1] + losses.shape), idx, axis=2)
    with np.errstate(all="ignore"):  # all-failed resamples: NaN
        logs = np.log(_stat(boot, statistic))
    slopes, _ = _ols(logn, np.where(np.isfinite(logs), logs, 0.0))
    return np.where(np.all(np.isfinite(logs), axis=1), slopes, np.nan)


def slope_difference(n, losses_a, losses_b, *, paired: bool, statistic: str = "mean",
                     n_boot: int = 2000, seed: int = 0):
    """slope(a) - slope(b) of two settings' losses (N, R_a), (N, R_b) over the same n, with a
    95 % percentile interval. `paired` (the same simulated replicates in both, R_a == R_b):
    each resample draws one set of replicate indices per n for both settings, so the
    replicate-to-replicate variation they share cancels; otherwise each is resampled
    independently. Returns (difference, (lo, hi))."""
    n = np.asarray(n, float)
    a, b = np.asarray(losses_a, float), np.asarray(losses_b, float)
    if paired and a.shape != b.shape:
        raise InputError(f"a paired contrast needs the same replicates, got {a.shape} and "
                         f"{b.shape}")
    logn = np.log(n)
    with np.errstate(all="ignore"):  # an all-failed n: NaN, refused below
        diff = float(_ols(logn, np.log(_stat(a, statistic)) - np.log(_stat(b, statistic)))[0])
    if not np.isfinite(diff):
        raise InputError("a contrast needs a positive, finite statistic at every n in both "
                         "settings")
    rng = np.random.default_rng(seed)
    idx_a = rng.integers(0, a.shape[1], size=(n_boot, n.size, a.shape[1]))
    idx_b = idx_a if paired else rng.integers(0, b.shape[1], size=(n_boot, n.size, b.shape[1]))
    lo, hi = interval95(boot_slopes(logn, a, idx_a, statistic)
                        - boot_slopes(logn, b, idx_b, statistic))
    return diff, (float(lo), float(hi))


def power_vs_log(n, losses, *, n_boot: int = 1000, seed: int = 0) -> dict:
    """Which law fits the replicates' losses (N, R) better: err = C n^(-a) or err = C (log
    n)^(-b)? Both are straight lines in log err, against log n and against log log n; fitted
    by least squares to every finite replicate's log loss, each with its own residual
    variance, their maximised Gaussian log-likelihoods differ by
        delta = (m / 2) log(RSS_power / RSS_log)     (m points; > 0: the log law fits better)
    (same number of parameters, so this is also the AIC difference / 2). The interval of delta
    resamples replicates within each n. Returns {"power_exponent", "log_exponent", "delta",
    "delta_ci95", "better"} with "better" = "log" or "power" only when the interval excludes 0
    (else "undecided")."""
    n = np.asarray(n, float)
    losses = np.asarray(losses, float)
    idx = np.random.default_rng(seed).integers(0, losses.shape[1],
                                               size=(n_boot,) + losses.shape)
    samples = np.concatenate([losses[None], np.take_along_axis(
        np.broadcast_to(losses, idx.shape), idx, axis=2)])
    logy = np.log(np.where(samples > 0, samples, np.nan))
    ok = np.isfinite(logy)
    m = ok.sum(axis=(1, 2))

    def fit(u):
        """Weighted OLS of logy on u (N,) per sample over finite points: (slope, rss)."""
        U = np.broadcast_to(u[None, :, None], logy.shape)
        ub = np.where(ok, U, 0).sum(axis=(1, 2)) / m
        yb = np.where(ok, logy, 0).sum(axis=(1, 2)) / m
        du = np.where(ok, U - ub[:, None, None], 0)
        dy = np.where(ok, logy - yb[:, None, None], 0)
        slope = (du * dy).sum(axis=(1, 2)) / (du * du).sum(axis=(1, 2))
        rss = ((dy - slope[:, None, None] * du) ** 2).sum(axis=(1, 2))
        return slope, rss

    if n.size < 3:
        raise InputError("telling a power law from a log law needs at least three sample "
                         "sizes (two fit either law exactly)")
    with np.errstate(all="ignore"):  # degenerate resamples (no spread): NaN, dropped
        a, rss_p = fit(np.log(n))
        b, rss_l = fit(np.log(np.log(n)))
        delta = 0.5 * m * np.log(rss_p / rss_l)
    if not np.isfinite(delta[0]):
        raise InputError("the losses do not vary: no law can be told from the other")
    lo, hi = interval95(delta[1:])
    better = "log" if lo > 0 else "power" if hi < 0 else "undecided"
    return {"power_exponent": float(-a[0]), "log_exponent": float(-b[0]),
            "delta": float(delta[0]), "delta_ci95": [float(lo), float(hi)], "better": better}


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


def local_slope_intervals(n, losses, width: int = 5, statistic: str = "mean",
                          n_boot: int = 1000, seed: int = 0):
    """95 % bootstrap intervals (W, 2) of `local_slopes`' windows (replicates resampled
    within each n)."""
    n = np.asarray(n, float)
    losses = np.asarray(losses, float)
    logn = np.log(n)
    idx = np.random.default_rng(seed).integers(0, losses.shape[1],
                                               size=(n_boot,) + losses.shape)
    out = []
    for i in range(n.size - width + 1):
        w = slice(i, i + width)
        out.append(interval95(boot_slopes(logn[w], losses[w], idx[:, w], statistic)))
    return np.asarray(out).reshape(-1, 2)
