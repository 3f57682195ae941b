"""The verdict rules (moestat/verdicts.py) on synthetic losses whose truth is known: a fast,
a slow, a flat and an at-floor set each get the verdict they should, and breaking a rule's
threshold changes it.

Synthetic losses: C n^s times log-normal noise (sd 0.3 on the log scale), 40 replicates per n
on 15 log-spaced n over 2.5 decades — the protocol's grid. With that noise the bootstrap
interval of a slope has half-width about 0.02, so a band of +-0.1 decides every clear case;
each test uses a fixed seed.
"""

from __future__ import annotations

import numpy as np
import pytest

from moestat.rates import fit_rate, power_vs_log, slope_difference
from moestat.verdicts import (
    FAILS,
    FLOOR_RATIO,
    HOLDS,
    INCONCLUSIVE,
    MAX_AT_MAX_ITER,
    NOT_ESTIMATED,
    Evidence,
    contrast_verdict,
    crossing_note,
    polynomial_verdict,
    slope_verdict,
)

N = np.unique(np.round(np.logspace(3, 5.5, 15)))
R = 40


def losses(slope, seed, sd=0.3, reps=R, shared=None):
    rng = np.random.default_rng(seed)
    noise = rng.normal(0.0, sd, (N.size, reps)) if shared is None else shared
    return 0.5 * N[:, None] ** slope * np.exp(noise)


def clean(reps=R, floor_ratio=0.01, at_max_iter=0):
    return Evidence(n_fits=N.size * reps, n_at_max_iter=at_max_iter, floor_ratio=floor_ratio,
                    replicates=reps, decades=2.5)


def judge_slope(data, value, tol=0.1, evidence=None):
    r = fit_rate(N, data, seed=0, statistic="median")
    return slope_verdict(r.slope, r.ci95, value, tol, evidence or clean())


def test_fast_data_holds_for_the_fast_claim_and_fails_the_slow_claim():
    fast = losses(-0.5, 1)
    assert judge_slope(fast, -0.5).verdict == HOLDS
    assert judge_slope(fast, -0.25).verdict == FAILS


def test_slow_data_holds_for_the_slow_claim_and_fails_the_fast_claim():
    slow = losses(-0.25, 2)
    assert judge_slope(slow, -0.25).verdict == HOLDS
    assert judge_slope(slow, -0.5).verdict == FAILS


def test_flat_data_fails_every_rate_claim():
    flat = losses(0.0, 3)
    for value in (-0.5, -0.375, -0.25):
        assert judge_slope(flat, value).verdict == FAILS


def test_a_wide_interval_is_inconclusive_and_says_what_would_decide():
    noisy = losses(-0.45, 4, sd=2.0, reps=4)  # 4 replicates of very noisy losses
    v = judge_slope(noisy, -0.25, evidence=clean(reps=4))
    assert v.verdict == INCONCLUSIVE
    assert "replicates per n (now 4)" in v.reason and "decades" in v.reason
    # an estimate on the band's edge: no practical amount of data decides
    edge = slope_verdict(-0.345, (-0.445, -0.245), -0.25, 0.1, clean())
    assert edge.verdict == INCONCLUSIVE and "100x the replicates" in edge.reason


def test_an_init_floor_is_not_estimated_whatever_its_slope():
    fast = losses(-0.5, 5)
    assert judge_slope(fast, -0.5, evidence=clean(floor_ratio=0.9)).verdict == NOT_ESTIMATED
    # the threshold is the rule: just below it the slope is judged
    below = clean(floor_ratio=FLOOR_RATIO - 1e-9)
    assert judge_slope(fast, -0.5, evidence=below).verdict == HOLDS
    assert judge_slope(fast, -0.5, evidence=clean(floor_ratio=np.nan)).verdict == NOT_ESTIMATED
    # the band is two-sided: just below 1 / FLOOR_RATIO still the start's perturbation
    near = clean(floor_ratio=1 / FLOOR_RATIO - 1e-9)
    assert judge_slope(fast, -0.5, evidence=near).verdict == NOT_ESTIMATED


def test_a_note_tells_fits_that_left_their_starts_from_fits_that_never_moved():
    """Rule 1's band at the largest n: the note appears only when the smallest n's ratio was
    at or above 1 / FLOOR_RATIO (the verdict itself is not the note's business)."""
    note = crossing_note(17.0, 1.3)
    assert note is not None and "17x" in note and "second scale" in note
    assert crossing_note(1 / FLOOR_RATIO, 1.3) is not None
    assert crossing_note(1 / FLOOR_RATIO - 1e-9, 1.3) is None  # never far from the start
    assert crossing_note(17.0, 0.2) is None and crossing_note(17.0, 5.0) is None  # not the band
    assert crossing_note(None, 1.3) is None and crossing_note(17.0, None) is None


def test_fits_far_from_a_tiny_start_are_judged_unless_their_error_grows_with_n():
    """Final / start error far above 1: the fits left a start closer to the truth than their
    statistical error. A shrinking error is the estimator's rate (judged); a growing one is a
    divergence (not estimated)."""
    fast = losses(-0.5, 5)
    moved = clean(floor_ratio=10.0)
    assert judge_slope(fast, -0.5, evidence=moved).verdict == HOLDS
    diverging = Evidence(**{**moved.__dict__, "grows": True})
    v = judge_slope(fast, -0.5, evidence=diverging)
    assert v.verdict == NOT_ESTIMATED and "move away from the truth" in v.reason


def test_fits_at_max_iter_make_any_claim_inconclusive():
    fast = losses(-0.5, 6)
    fits = N.size * R
    over = clean(at_max_iter=int(MAX_AT_MAX_ITER * fits) + 1)
    v = judge_slope(fast, -0.5, evidence=over)
    assert v.verdict == INCONCLUSIVE and "max_iter" in v.reason
    assert judge_slope(fast, -0.5, evidence=clean(
        at_max_iter=int(MAX_AT_MAX_ITER * fits))).verdict == HOLDS


def contrast(fast, slow, paired, margin=0.1, ev_fast=None, ev_slow=None):
    d, ci = slope_difference(N, fast, slow, paired=paired, statistic="median", seed=0)
    return contrast_verdict(d, ci, margin, ev_fast or clean(), ev_slow or clean()), d, ci


def test_contrast_holds_fails_and_respects_the_gates():
    shared = np.random.default_rng(7).normal(0.0, 0.3, (N.size, R))
    fast, slow = losses(-0.5, 0, shared=shared), losses(-0.25, 0, shared=shared)
    v, d, _ = contrast(fast, slow, paired=True)
    assert v.verdict == HOLDS and d == pytest.approx(-0.25, abs=1e-9)
    same = losses(-0.5, 8)
    assert contrast(fast, same, paired=True)[0].verdict == FAILS  # equal rates
    assert contrast(slow, fast, paired=True)[0].verdict == FAILS  # reversed
    v = contrast(fast, slow, paired=True, ev_slow=clean(floor_ratio=0.95))[0]
    assert v.verdict == NOT_ESTIMATED and v.reason.startswith("slower")
    v = contrast(fast, slow, paired=True, ev_fast=clean(at_max_iter=N.size * R))[0]
    assert v.verdict == INCONCLUSIVE and v.reason.startswith("faster")


def test_pairing_cancels_shared_replicate_noise():
    """Replicate r's data is shared by both settings (a large common factor per replicate):
    resampling replicates jointly cancels it, resampling independently does not."""
    rng = np.random.default_rng(9)
    shared = rng.normal(0.0, 1.0, (N.size, R)) + rng.normal(0.0, 0.05, (N.size, R))
    fast = losses(-0.5, 0, shared=shared)
    slow = losses(-0.4, 0, shared=shared + rng.normal(0.0, 0.05, (N.size, R)))
    _, d_p, ci_p = contrast(fast, slow, paired=True, margin=0.05)
    _, d_u, ci_u = contrast(fast, slow, paired=False, margin=0.05)
    assert d_p == d_u
    assert (ci_p[1] - ci_p[0]) < 0.5 * (ci_u[1] - ci_u[0])
    assert ci_p[0] <= -0.1 <= ci_p[1]


def test_slower_than_polynomial_rule():
    rng = np.random.default_rng(10)
    noise = np.exp(rng.normal(0.0, 0.05, (N.size, R)))
    log_law = (1.0 / np.log(N))[:, None] ** 2 * noise
    power_law = N[:, None] ** -0.25 * noise
    for data, expected, better in ((log_law, HOLDS, "log"), (power_law, FAILS, "power")):
        laws = power_vs_log(N, data, seed=0)
        assert laws["better"] == better
        assert polynomial_verdict(laws["delta"], laws["delta_ci95"], clean()).verdict == \
            expected
    assert power_vs_log(N, power_law, seed=0)["power_exponent"] == pytest.approx(0.25,
                                                                                 abs=0.01)
    assert power_vs_log(N, log_law, seed=0)["log_exponent"] == pytest.approx(2.0, abs=0.05)
