"""The asymptotic normal law of an exact fit (moestat/experiments/asymptotics.py), against the
fits of a small run of the same setting."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from moestat.cli import app
from moestat.experiments.asymptotics import asymptotic_medians, asymptotic_report
from moestat.experiments.metric_runs import metric_runs
from moestat.experiments.store import read_rows
from studies import run_study
from truths import TWO_EXPERTS

RUN = """
name = "asymptotic"
seed = 3
replicates = 40
block = 10
metrics = ["a", "beta1"]
n = [1000, 4000]

[[settings]]
name = "exact"
gate = "softmax"
expert = "linear"
""" + TWO_EXPERTS + """
[[settings]]
name = "over"
gate = "softmax"
expert = "linear"
init = { kind = "near_truth", scale = 0.1, assignment = [0, 0, 1] }
""" + TWO_EXPERTS.replace("n_experts = 2", "n_experts = 3")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    # the over-specified setting is not fitted
    return run_study(tmp_path_factory.mktemp("asymptotic"), "asymptotic", RUN, only={"exact"})


def test_the_law_scales_as_one_over_root_n_and_skips_over_specified_fits(run):
    config, _ = run
    exact, over = config.settings
    law = asymptotic_medians(config, exact, [1000, 100_000], draws=100, n_info=20_000)
    # the same normal draws, scaled by n^(-1/2): first-power parameter errors shrink tenfold
    for metric in ("a", "beta1"):
        assert law[metric][0] / law[metric][1] == pytest.approx(10.0, rel=1e-6)
    assert asymptotic_medians(config, over, [1000, 100_000]) is None  # more atoms than the truth


def test_the_fits_median_error_agrees_with_the_law(run):
    """MLE fits of an exact, regular model: their median error at n = 4000 lies within a factor
    2 of the law's. The median of 40 replicates has a relative sd of about 0.18; with 200
    replicates the fits' medians are 1.04x (a) and 1.18x (beta1: the gate slope's finite-sample
    excess) the law's, here 1.12x and 1.52x. The band is about 4 sd wide either way and fails
    an information off by a factor 4 or more (a constant factor c moves the law by sqrt(c))."""
    config, out = run
    rep = asymptotic_report(out)
    rows = {(r["setting"], r["metric"]): r for r in rep["rows"]}
    assert {s for s, _ in rows} == {"exact"}
    cols = read_rows(out).to_pydict()
    for metric in ("a", "beta1"):
        r = rows[("exact", metric)]
        observed = metric_runs(cols, config, "exact", metric).final_median(4000)
        assert r["observed_median"][1] == pytest.approx(observed)
        assert 0.5 < r["ratio"][1] < 2.0, r


def test_cli_asymptotic_json_and_table(run):
    _, out = run
    r = CliRunner().invoke(app, ["report", str(out), "--asymptotic", "--json"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    assert rep["experiment"] == "asymptotic" and len(rep["rows"]) == 2
    r = CliRunner().invoke(app, ["report", str(out), "--asymptotic"])
    assert r.exit_code == 0 and "observed / asymptotic" in r.output


def test_directions_the_likelihood_does_not_see_are_held_and_counted():
    """I with a null direction (a coordinate no score moves): L L^T is the inverse on the
    others, the null coordinate gets no spread, and it is counted."""
    from moestat.experiments.asymptotics import _root_of_inverse

    info = np.diag([4.0, 0.0, 1.0])
    info[0, 2] = info[2, 0] = 1.0
    L, null = _root_of_inverse(info)
    assert null == 1 and L.shape == (3, 2)
    np.testing.assert_allclose(L @ L.T, np.linalg.pinv(info), atol=1e-12)
    np.testing.assert_allclose(L[1], 0.0)
