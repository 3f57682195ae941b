"""The rate fitter (docs/losses.md, "Empirical rates")."""

from __future__ import annotations

import numpy as np
import pytest

from moestat import InputError
from moestat.rates import fit_rate, local_slopes

N = np.logspace(3, 5, 20)


@pytest.mark.parametrize("s", [-0.5, -0.25, -0.125])
def test_interval_covers_true_slope_in_90_percent_of_trials(s):
    """Losses C n^s x log-normal noise (sd 0.5 on the log scale), 40 replicates per n: the
    bootstrap 95 % interval holds s in >= 90 % of 200 seeded trials."""
    hits = 0
    for trial in range(200):
        rng = np.random.default_rng(1000 + trial)
        losses = 2.0 * N[:, None] ** s * np.exp(rng.normal(0.0, 0.5, (N.size, 40)))
        r = fit_rate(N, losses, seed=trial, n_boot=1000)
        hits += r.ci95[0] <= s <= r.ci95[1]
    assert hits >= 180, hits


def test_exact_power_law_and_counts():
    losses = 3.0 * N[:, None] ** -0.5 * np.ones((1, 10))
    losses[0, 0] = np.nan  # one failed fit: dropped from the mean, counted
    r = fit_rate(N, losses)
    assert r.slope == pytest.approx(-0.5, abs=1e-12)
    assert r.intercept == pytest.approx(np.log(3.0), abs=1e-12)
    assert r.r2 == pytest.approx(1.0)
    assert (r.n_fits, r.n_failed, r.n_values, r.replicates) == (200, 1, 20, 10)
    w = fit_rate(N, losses, window=(1e4, 1e5))
    assert w.n_values == int(np.sum(N >= 1e4))


def test_nonconverged_fits_are_counted_and_optionally_dropped():
    losses = N[:, None] ** -0.5 * np.ones((1, 4))
    conv = np.ones(losses.shape, bool)
    conv[3, 1] = False
    losses[3, 1] = 1e6  # a wandering non-converged fit
    kept = fit_rate(N, losses, converged=conv)
    dropped = fit_rate(N, losses, converged=conv, drop_nonconverged=True)
    assert kept.n_nonconverged == dropped.n_nonconverged == 1
    assert dropped.n_failed == 1 and kept.n_failed == 0
    assert dropped.slope == pytest.approx(-0.5, abs=1e-12) and kept.slope != dropped.slope


def test_median_statistic_is_robust():
    rng = np.random.default_rng(0)
    losses = N[:, None] ** -0.5 * np.exp(rng.normal(0, 0.1, (N.size, 40)))
    losses[:, 0] *= 1e3 * rng.uniform(0.5, 2.0, N.size)  # one wandering replicate per n
    assert abs(fit_rate(N, losses, statistic="median").slope + 0.5) < 0.02


def test_local_slopes_detect_flattening():
    losses = (1.0 / np.log(N))[:, None] * np.ones((1, 5))  # slower than any polynomial
    centres, slopes = local_slopes(N, losses, width=5)
    assert np.all(np.diff(slopes) > 0) and slopes[-1] > -0.25


@pytest.mark.parametrize("kwargs,msg", [
    (dict(losses=np.ones((3, 4))), "shape"),
    (dict(losses=-np.ones((20, 4))), "> 0"),
    (dict(losses=np.ones((20, 4)), n_boot=10), "n_boot"),
    (dict(losses=np.full((20, 4), np.nan)), "every fit failed"),
])
def test_bad_input(kwargs, msg):
    with pytest.raises(InputError, match=msg):
        fit_rate(N, **kwargs)
