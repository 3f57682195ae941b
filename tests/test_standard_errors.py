"""Standard errors from the observed information (moestat/standard_errors.py)."""

from __future__ import annotations

import numpy as np
import pytest

from moestat.model import MixtureOfExperts
from moestat.model_checks import coverage_figure, coverage_study
from moestat.table_fit import fit_table


def _one_expert_fit():
    """(x, y, fit): 300 rows of a straight line with noise sd 0.3, x of scale 1e3 shifted by
    40, fitted with one expert."""
    rng = np.random.default_rng(4)
    x = 1e3 * rng.normal(size=300) + 40.0
    y = 0.002 * x + 1.0 + 0.3 * rng.normal(size=300)
    model = MixtureOfExperts.create("softmax", "linear", "gaussian", n_experts=1, n_features=1)
    return x, y, fit_table(model, x[:, None], y, n_init=1, seed=0)


def test_one_expert_gives_the_closed_form_of_gaussian_linear_regression():
    """k = 1 is Gaussian linear regression: at the MLE the observed information gives
    Cov(a, b) = s2 (Z^T Z)^-1 with s2 the MLE variance, and SE(s2) = s2 sqrt(2 / n), on the
    user's scale (x of scale 1e3, shifted: the back-map of the standardised fit must carry
    them). Exact up to the fit's tolerance (1e-6 relative)."""
    x, y, fit = _one_expert_fit()
    n = len(y)
    assert fit.standard_errors_ok
    Z = np.column_stack([x, np.ones(n)])
    coef, *_ = np.linalg.lstsq(Z, y, rcond=None)
    s2 = np.mean((y - Z @ coef) ** 2)
    cov = s2 * np.linalg.inv(Z.T @ Z)
    se = fit.standard_errors
    np.testing.assert_allclose(se["expert.a"][0, 0], np.sqrt(cov[0, 0]), rtol=1e-6)
    np.testing.assert_allclose(se["expert.b"][0], np.sqrt(cov[1, 1]), rtol=1e-6)
    np.testing.assert_allclose(se["noise.var"][0], s2 * np.sqrt(2 / n), rtol=1e-6)
    assert np.all(se["gate.beta0"] == 0) and np.all(se["gate.beta1"] == 0)  # the gauge


def test_the_parametric_bootstrap_agrees_with_the_closed_form_for_one_expert():
    """k = 1, the same regression as above: 400 refits of responses drawn from the fit give
    SEs within 15 % of the closed form (the Monte Carlo error of an SD from 400 draws is
    ~3.5 %: 15 % is about four of them), every refit used; the gauge row's SE is 0."""
    _, _, fit = _one_expert_fit()
    boot, used = fit.bootstrap_standard_errors(samples=400, seed=1)
    assert used == 400
    exact = fit.standard_errors
    for name in ("expert.a", "expert.b", "noise.var"):
        np.testing.assert_allclose(boot[name], exact[name], rtol=0.15)
    assert np.all(boot["gate.beta0"] == 0)


def test_singular_information_gives_no_standard_errors():
    """Two experts fitted to data from one straight line with almost no noise: a copy is
    redundant, the information is singular, and no SE is reported (NaN, ok False)."""
    x = np.linspace(-1, 1, 60)
    y = 2 * x + 1.0
    model = MixtureOfExperts.create("softmax", "linear", "gaussian", n_experts=2, n_features=1)
    fit = fit_table(model, x[:, None], y, n_init=2, seed=0)
    assert not fit.standard_errors_ok
    assert all(np.all(np.isnan(v)) for v in fit.standard_errors.values())


def test_the_coverage_figure_is_written(tmp_path):
    """Rows shaped like coverage_study's (no fits needed) give a PNG."""
    rows = [{"n": n, "replicates": 200, "singular": 0, "pooled": 0.94,
             "per_parameter": {"expert.a": 0.95, "noise.var": 0.91}} for n in (200, 1000)]
    coverage_figure(rows, tmp_path / "coverage.png")
    assert (tmp_path / "coverage.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_95_percent_intervals_cover_the_truth_90_to_98_percent_of_the_time():
    """200 data sets of 1000 rows from a regular two-expert model: pooled over the free
    parameters, estimate +- 1.96 SE covers the truth 90-98 % of the time (binomial sd of one
    parameter's coverage at 95 % over 200 data sets is 1.5 %; per parameter >= 88 %)."""
    out = coverage_study(n=1000, replicates=200, seed=0)
    assert out["singular"] <= 2
    assert 0.90 <= out["pooled"] <= 0.98
    assert all(c >= 0.88 for c in out["per_parameter"].values()), out
