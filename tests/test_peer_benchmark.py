"""The peer benchmark's own pieces (moestat/bench/peer.py); the fits it times run in
`moestat bench --peer`, not here (minutes, and R)."""

from __future__ import annotations

from moestat.bench import peer
from moestat.data import read_table


def test_synthetic_cases_are_tables_moestat_fit_reads(tmp_path):
    peer.write_synthetic(tmp_path)
    sizes = {"crossing.csv": 200, "quadratic.csv": 500, "unscaled.csv": 300, "four.csv": 1000,
             "crossing_1e4.csv": 10_000, "three_1e5.csv": 100_000}
    for case in peer.SYNTHETIC_CASES:
        table = read_table(tmp_path / case.csv, case.target, case.features.split(","))
        assert table.X.shape == (sizes[case.csv], len(case.features.split(",")))
    unscaled = read_table(tmp_path / "unscaled.csv", "y", ["x"])
    assert 8e3 < unscaled.X.mean() < 1.2e4 and unscaled.X.std() > 300  # the 1e3-scale feature


def test_totals_and_table_count_an_unfinished_flexmix_as_not_matched():
    fit = {"loglik": -10.0, "seconds": 2.0, "converged": True, "degenerate": [],
           "reached_best": 20}
    rows = [{"case": "a", "source": "R", "k": 2, "moestat": fit, "moestat_empty_cache": fit,
             "flexmix": {"loglik": -10.04, "k": 2, "seconds": 1.0, "finished": True}},
            {"case": "b", "source": "synthetic", "k": 3, "moestat": fit,
             "moestat_empty_cache": fit,
             "flexmix": {"loglik": None, "k": None, "seconds": 900.0, "finished": False}}]
    totals = peer.totals(rows)
    assert totals["moestat_at_least_flexmix"] == 1 and totals["flexmix_unfinished"] == 1
    table = peer.markdown({"rows": rows, "n_init": 20})
    assert "+0.040" in table and "> 900" in table
    assert "did not finish" in peer.line(rows[1])
