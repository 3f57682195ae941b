"""Numerical degeneracy: constructed pathological data keep every result finite, the
fits are flagged (`degenerate` and its reasons), reports summarise them, and no NaN or inf
reaches a results file."""

from __future__ import annotations

import json
import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from moestat.fit import fit, fit_random
from moestat.fit.loop import iterate
from moestat.model import MixtureOfExperts
from truths import TWO_EXPERTS

N = 400
FLAGS = ("floored", "empty", "separated", "degenerate")


def _x():
    return np.random.default_rng(0).uniform(-1, 1, N)


def _collapsing():
    """Half the points lie exactly on a line: the likelihood grows without bound as that
    component's variance -> 0, so the fit must stop at the variance floor."""
    x = _x()
    noise = np.random.default_rng(1).normal(0, 0.3, N)
    return x, np.where(x < 0, 2 * x + 1, -x + noise)


def _separable():
    """Two constant regimes split exactly at x = 0 (noise sd 0.01): the gate's likelihood
    keeps growing as its slope -> infinity, so the slope must stop on its box (|beta| <= 50)."""
    x = _x()
    return x, np.where(x < 0, 1.0, -1.0) + np.random.default_rng(2).normal(0, 0.01, N)


def _flags(r):
    return {f: bool(getattr(r, f)) for f in FLAGS}


def _all_finite(r):
    leaves = jax.tree_util.tree_leaves(r.params)
    return (all(bool(jnp.all(jnp.isfinite(v))) for v in leaves)
            and math.isfinite(float(r.objective)) and math.isfinite(float(r.loglik)))


@pytest.mark.parametrize("data,expected", [
    (_collapsing, {"floored"}),
    (_separable, {"separated"}),
], ids=["collapsing-component", "separable-gate"])
def test_pathological_data_gives_finite_flagged_fits(data, expected):
    x, y = data()
    model = MixtureOfExperts.create("softmax", "linear", n_experts=2, n_features=1)
    r, objectives = fit_random(model, x[:, None], y, jax.random.PRNGKey(0), 5)
    assert _all_finite(r) and bool(jnp.all(jnp.isfinite(objectives)))
    flags = _flags(r)
    assert flags["degenerate"] and all(flags[f] for f in expected), flags


def test_huge_logits_and_values_stay_finite():
    """Overflow in exp: with features of size 1e3 the separating gate's fitted logits reach
    thousands (exp overflows float64 past ~709): the log-space gate and E-step keep the fit
    finite. Data scaled by 1e100 (squares 1e200, still finite) fit finitely too: the variance
    box scales with var(y)."""
    x, y = _separable()
    model = MixtureOfExperts.create("softmax", "linear", n_experts=2, n_features=1)
    r, _ = fit_random(model, 1e3 * x[:, None], y, jax.random.PRNGKey(0), 5)
    logits = model.gate.logits(r.params.gate, jnp.asarray(1e3 * x[:, None]))
    assert _all_finite(r) and float(jnp.max(jnp.abs(logits))) > 709
    x, y = _collapsing()
    r, _ = fit_random(model, 1e100 * x[:, None], 1e100 * y, jax.random.PRNGKey(0), 5)
    assert _all_finite(r)


def test_an_expert_without_data_is_flagged_empty():
    """k = 3 fitted to a one-line truth from a start whose first expert has gate weight
    e^-45 ~ 3e-20: its responsibilities are ~0 at every step, so it stays without data."""
    x = _x()
    y = 0.5 * x + np.random.default_rng(3).normal(0, 0.2, N)
    model = MixtureOfExperts.create("softmax", "linear", n_experts=3, n_features=1)
    z = model.zeros()
    start = z._replace(gate=z.gate._replace(beta0=jnp.array([-45.0, 0.5, 0.0])),
                       expert=z.expert._replace(a=jnp.array([[5.0], [0.5], [0.4]])),
                       noise=z.noise._replace(var=jnp.array([1.0, 0.04, 0.04])))
    r = fit(model, x[:, None], y, start)
    assert _all_finite(r)
    flags = _flags(r)
    assert flags["empty"] and flags["degenerate"] and not flags["floored"], flags


def test_a_regular_fit_is_not_degenerate():
    """The same machinery on well-posed data (two noisy linear regimes, smooth gate)."""
    x = _x()
    rng = np.random.default_rng(4)
    y = np.where(rng.uniform(size=N) < 1 / (1 + np.exp(-3 * x)), 2 * x, -x + 1)
    y = y + rng.normal(0, 0.2, N)
    model = MixtureOfExperts.create("softmax", "linear", n_experts=2, n_features=1)
    r, _ = fit_random(model, x[:, None], y, jax.random.PRNGKey(0), 5)
    assert bool(r.converged) and not any(_flags(r).values()), _flags(r)


def test_the_loop_returns_the_last_state_with_a_finite_objective():
    """A step whose objective turns NaN at state 3 (like an overflow): the loop stops and
    returns state 2, the last one whose objective was finite, as not converged."""
    def step(s):
        return s + 1.0, jnp.where(s >= 3.0, jnp.nan, -10.0 / (s + 1.0))

    state, n_iter, converged, history = iterate(step, jnp.asarray(0.0), 50, 1e-12)
    assert float(state) == 2.0 and not bool(converged) and int(n_iter) == 4
    assert np.isnan(np.asarray(history)[3]) and np.all(np.isfinite(np.asarray(history)[:3]))


def test_the_estimator_warns_and_the_fit_command_reports_degeneracy(tmp_path, capsys):
    from moestat import cli
    from moestat.estimator import MixtureOfExpertsRegressor
    from moestat.fit.degeneracy import DegenerateFitWarning

    x, y = _separable()
    est = MixtureOfExpertsRegressor(n_experts=2, random_state=0)
    with pytest.warns(DegenerateFitWarning, match="a gate coefficient on its box"):
        est.fit(x[:, None], y)
    assert "separated" in est.degenerate_
    path = tmp_path / "sep.csv"
    path.write_text("x,y\n" + "\n".join(f"{a:.17g},{b:.17g}" for a, b in zip(x, y, strict=True)))
    assert cli.main(["fit", str(path), "--target", "y", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert "separated" in out["degenerate"]
    assert cli.main(["fit", str(path), "--target", "y"]) == 0
    assert "degenerate fit: a gate coefficient on its box" in capsys.readouterr().out


PATHOLOGICAL = """
name = "pathological"
seed = 5
replicates = 4
block = 2
n = [300, 600]
metrics = ["D1", "a", "a@overfitted"]

[[settings]]
name = "noiseless_expert"
""" + TWO_EXPERTS.replace('"noise.var" = [0.05, 0.08]', '"noise.var" = [1e-14, 0.08]')
# expert 1 noiseless (sd 1e-7, below the variance floor 1e-6 var(y))


def _strict_json(text):
    def refuse(c):
        raise ValueError(f"not JSON: {c}")

    return json.loads(text, parse_constant=refuse)


def test_no_nan_reaches_a_results_file(tmp_path, monkeypatch, capsys):
    """A sweep on a noiseless-expert truth (every fit floors a variance), with a metric that
    has no value when a fit has no over-fitted cell (a@overfitted), and one cell that fails:
    the Parquet files hold nulls, never NaN or inf; every fit is flagged degenerate (a
    variance on its floor, at least); `report` counts the failed and degenerate fits by
    reason, as in the files; summary.json is strict JSON."""
    from moestat import cli
    from moestat.experiments import backends
    from moestat.experiments.cell import run_cell as real
    from moestat.experiments.store import cells_dir
    from moestat.fit.degeneracy import REASONS

    def flaky(config, cell):
        if cell.n == 600 and cell.start == 2:
            raise FloatingPointError("overflow")
        return real(config, cell)

    monkeypatch.setattr(backends, "run_cell", flaky)
    cfg = tmp_path / "p.toml"
    cfg.write_text(PATHOLOGICAL)
    out = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no silent NaN arithmetic either
        assert cli.main(["run", str(cfg), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    files = sorted(cells_dir(out).glob("*.parquet"))
    assert len(files) == 4
    nulls, rows = 0, {}
    for f in files:
        t = pq.read_table(f)
        for name in t.column_names:
            col = t[name]
            if pa.types.is_floating(col.type):
                assert not pc.any(pc.is_nan(col)).as_py(), (f.name, name)
                assert not pc.any(pc.is_inf(col)).as_py(), (f.name, name)
                nulls += col.null_count
        for k, v in t.to_pydict().items():
            rows.setdefault(k, []).extend(v)
    ok = [not v for v in rows["failed"]]
    assert sum(ok) == 6 and nulls > 0
    assert all(rows["degenerate"][i] and rows["floored"][i] for i in range(8) if ok[i])
    assert all((v is None) == (not o) for v, o in zip(rows["metric.D1"], ok, strict=True))
    summary = _strict_json((out / "summary.json").read_text())

    def count(flag):
        return sum(rows[flag][i] for i in range(8) if ok[i])

    parts = [f"{count(f)} {text}" for f, text in REASONS.items() if f != "nonfinite" and count(f)]
    assert summary["warnings"] == [
        "noiseless_expert: 2 of 8 fits failed (their rows are kept with failed = true and no "
        "values)",
        f"noiseless_expert: 6 of 8 fits degenerate ({', '.join(parts)})"]
    assert "warning: noiseless_expert: 6 of 8 fits degenerate" in " ".join(printed.split())
