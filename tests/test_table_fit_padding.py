"""Feature padding of a user's table (table_fit.feature_padded): zero columns change nothing
but the shapes, so tables with different feature counts share compiled programs."""

from __future__ import annotations

import numpy as np
import pytest

from moestat import program_store, table_fit
from moestat.compiling import TABLE_ROWS
from moestat.model import MixtureOfExperts
from moestat.table_fit import build_model, feature_padded, fit_table


def _table(d: int, n: int = 300):
    """n rows of two softmax-gated linear experts in d features."""
    rng = np.random.default_rng(d)
    X = rng.normal(size=(n, d))
    z = rng.uniform(size=n) < 1 / (1 + np.exp(-2 * X[:, 0]))
    y = np.where(z, X @ np.linspace(1, 2, d), 1 - X @ np.linspace(0.5, 1, d))
    return X, y + 0.3 * rng.normal(size=n)


@pytest.mark.parametrize("d", [1, 3])
def test_a_padded_fit_is_the_unpadded_fit(d, monkeypatch):
    """d = 1 (fitted with 2 features) and d = 3 (with 4): the same optimum, parameters and
    restarts as the fit without padding. The starts and every update see the zero columns as
    absent, so only rounding differs: log-likelihood to 1e-9 relative, parameters to 1e-6
    (the fit's own tolerance is 1e-8 on the mean log-likelihood)."""
    X, y = _table(d)
    model = build_model(2, d)
    assert feature_padded(model, X)[0].n_features == {1: 2, 3: 4}[d]
    padded = fit_table(model, X, y, n_init=5, seed=3)
    monkeypatch.setattr(table_fit, "INERT_ZERO_COLUMNS", set())
    plain = fit_table(model, X, y, n_init=5, seed=3)
    np.testing.assert_allclose(padded.loglik, plain.loglik, rtol=1e-9)
    assert padded.n_reached_best == plain.n_reached_best
    for name, value in model.named(plain.params).items():
        got = model.named(padded.params)[name]
        assert got.shape == value.shape
        np.testing.assert_allclose(got, value, rtol=1e-6, atol=1e-8, err_msg=name)
    assert padded.standard_errors_ok
    for name, value in plain.standard_errors.items():
        np.testing.assert_allclose(padded.standard_errors[name], value, rtol=1e-5, atol=1e-10)


def test_one_and_two_feature_tables_share_the_fit_programs(tmp_path, monkeypatch):
    """y ~ x and y ~ x + x^2 on tables of one row bucket: two fit programs in all (the SE
    program, on the unpadded data, is one per feature count)."""
    monkeypatch.setattr(table_fit, "active_directory", lambda: str(tmp_path))
    program_store._LOADED.clear()
    X, y = _table(1)
    model = build_model(2, 1)
    assert fit_table(model, X, y, n_init=2, with_standard_errors=True).standard_errors_ok
    assert len(list((tmp_path / "programs").glob("*.xla"))) == 3
    X2 = np.column_stack([X, X**2])
    assert fit_table(build_model(2, 2), X2, y, n_init=2,
                     with_standard_errors=True).standard_errors_ok
    assert len(list((tmp_path / "programs").glob("*.xla"))) == 4


def test_padding_applies_only_where_zero_columns_are_known_inert():
    """Not above TABLE_ROWS rows (compiling is not the cost there), not for other gates or
    experts, not for a model with a frozen expert, not with Newton steps (each zero column
    adds Hessian passes and could push a model past Newton's parameter limit)."""
    X = np.zeros((100, 1))
    model = build_model(2, 1)
    assert feature_padded(model, np.zeros((TABLE_ROWS + 1, 1)))[0] is model
    assert feature_padded(model, X)[0] is not model
    assert feature_padded(model, X, newton=True)[0] is model
    laplace = MixtureOfExperts.create("laplace", "linear", "gaussian", n_experts=2,
                                      n_features=1)
    assert feature_padded(laplace, X)[0] is laplace
    poly = MixtureOfExperts.create("softmax", "polynomial:2", "gaussian", n_experts=2,
                                   n_features=1)
    assert feature_padded(poly, X)[0] is poly
    wide = build_model(2, 17)
    assert feature_padded(wide, np.zeros((100, 17)))[0] is wide
