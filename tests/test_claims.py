"""Declared claims through the engine: paired settings share their data, init_scales fits
each setting again from another start scale, and the report carries the verdicts, the
contrasts and the gates' numbers (fits at max_iter, the init floor)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from moestat.errors import InputError
from moestat.experiments import claims, runner
from moestat.experiments.config import base_setting, parse_config, read_toml
from moestat.experiments.store import read_rows
from studies import run_study
from truths import TWO_EXPERTS as SOFTMAX_TRUTH

TWO_EXPERTS = 'gate = "softmax"\nexpert = "linear"\n' + SOFTMAX_TRUTH

CLAIMED = """
name = "claimed"
seed = 5
replicates = 4
block = 4
metrics = ["D1", "a"]
n = [300, 900, 2700]
headline = "median"
init_scales = [0.1, 0.3]

[[settings]]
name = "first"
""" + TWO_EXPERTS + """
[[settings]]
name = "again"
data = "first"
""" + TWO_EXPERTS + """
[[claims]]
expect = "slope"
setting = "first"
metric = "D1"
value = -0.5
tol = 0.2

[[claims]]
expect = "contrast"
metric = "a"
faster = "first"
slower = "again"
margin = 0.1

[[claims]]
expect = "slower_than_polynomial"
setting = "first"
metric = "a"
"""


@pytest.fixture(scope="module")
def claimed(tmp_path_factory):
    return run_study(tmp_path_factory.mktemp("claimed"), "claimed", CLAIMED)


def test_init_scales_expand_once_and_pair_with_their_setting(claimed):
    config, out = claimed
    assert [s.name for s in config.settings] == ["first", "again", "first.init0.3",
                                                 "again.init0.3"]
    copy = config.settings[2]
    assert copy.init.scale == 0.3 and copy.data == "first" and copy.data_stream == "first"
    assert config.settings[3].data_stream == "first"  # "again" uses first's data already
    assert config.init_scales == [] and base_setting("again.init0.3") == "again"
    again = runner.load_resolved(out)  # the resolved config reads back as itself
    assert [s.name for s in again.settings] == [s.name for s in config.settings]


def test_one_data_stream_means_the_same_data(claimed):
    """`again` fits first's simulated data from first's starts: the same fits, to rounding
    (identical programs and inputs); its copy from scale-0.3 starts differs."""
    _, out = claimed
    cols = read_rows(out).to_pydict()
    by = {}
    for i, s in enumerate(cols["setting"]):
        by[(s, cols["n"][i], cols["replicate"][i])] = (cols["metric.D1"][i],
                                                       cols["start.D1"][i])
    keys = [k for k in by if k[0] == "first"]
    assert len(keys) == 12
    for _, n, r in keys:
        np.testing.assert_allclose(by[("again", n, r)], by[("first", n, r)], rtol=1e-9)
        assert by[("first.init0.3", n, r)][1] > by[("first", n, r)][1]  # a farther start


def test_report_carries_verdicts_contrasts_and_gates(claimed):
    config, out = claimed
    rep = runner.report(out, n_boot=1000)
    assert rep["headline"] == "median"
    for r in rep["rates"]:
        assert {"n_at_max_iter", "n_not_converged", "init_floor", "power_vs_log"} <= set(r)
        floor = r["init_floor"]
        assert floor["n"] == 2700 and floor["start_median"] > 0
        # exact fits move well away from their start: the error is no init floor
        assert floor["ratio"] < 0.5 and r["n_at_max_iter"] == 0
    slope, contrast, poly = rep["claims"]
    assert slope["verdict"] in ("holds", "fails", "inconclusive", "not estimated")
    assert {"slope", "ci95", "n_at_max_iter", "floor_ratio", "first_ratio", "reason"} <= set(slope)
    assert all("note" not in c for c in rep["claims"] if c["verdict"] != "not estimated")
    # the same data fitted the same way: the difference is 0 exactly, and with a margin of
    # 0.1 "first is faster" is refuted
    assert contrast["paired"] is True and contrast["slope_difference"] == pytest.approx(0.0,
                                                                                      abs=1e-9)
    assert contrast["ci95"] == pytest.approx([0.0, 0.0], abs=1e-9)
    assert contrast["verdict"] == "fails"
    assert rep["contrasts"] == [{k: contrast[k] for k in (
        "faster", "slower", "metric", "slower_metric", "slope_difference", "ci95", "paired",
        "verdict", "reason")}]
    assert poly["better"] in ("log", "power", "undecided") and "delta_ci95" in poly
    scales = {(e["setting"], e["metric"]): e for e in rep["init_scales"]}
    assert set(scales) == {(s, m) for s in ("first", "again") for m in ("D1", "a")}
    assert scales[("first", "D1")]["scales"] == [0.1, 0.3]


def test_a_not_estimated_claim_notes_fits_that_left_their_starts():
    one = {"floor_ratio": 1.3, "first_ratio": 12.0}
    assert "12x" in claims._crossing(one)
    assert claims._crossing({"floor_ratio": 1.3, "first_ratio": 1.1}) is None
    contrast = {"faster_gates": {"floor_ratio": 1.3, "first_ratio": 12.0},
                "slower_gates": {"floor_ratio": 0.9, "first_ratio": 1.0}}
    note = claims._crossing(contrast)
    assert note.startswith("faster: ") and "slower" not in note


def test_a_contrast_may_name_the_slower_settings_own_metric(claimed, monkeypatch):
    """Two models that name a block differently (Laplace W, softmax beta1): the contrast
    compares `metric` in the faster setting with `slower_metric` in the slower one — here a
    in "first" against D1 in "again", whose median slopes the rate table gives."""
    config, out = claimed
    renamed = [c.model_copy(update={"slower_metric": "D1"}) if c.expect == "contrast" else c
               for c in config.claims]
    judge = runner.judge  # the run's cells are keyed by its own config: judge another's claims
    monkeypatch.setattr(runner, "judge", lambda cfg, runs, n_boot: judge(
        cfg.model_copy(update={"claims": renamed}), runs, n_boot))
    rep = runner.report(out, n_boot=1000)
    slopes = {(r["setting"], r["metric"]): r["median_slope"] for r in rep["rates"]}
    c = rep["contrasts"][0]
    assert c["metric"] == "a" and c["slower_metric"] == "D1"
    assert c["slope_difference"] == pytest.approx(slopes["first", "a"] - slopes["again", "D1"],
                                                  abs=1e-9)
    assert abs(c["slope_difference"]) > 1e-6  # not the same curve twice


def test_cli_report_json_and_plot_with_a_contrast_panel(claimed, tmp_path):
    _, out = claimed
    r = subprocess.run([sys.executable, "-m", "moestat", "report", str(out), "--json"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["contrasts"][0]["paired"] is True
    from moestat.experiments.plot import rate_figure

    fig = rate_figure(out, slopes=True)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert any(t.startswith("contrast a: first vs again\nfails") for t in titles)
    assert sum(t.startswith("claimed: slope of") for t in titles) == 2  # D1 and a


BAD = [
    ("claim names no setting", CLAIMED.replace('faster = "first"', 'faster = "nope"'),
     "no setting 'nope'"),
    ("claim names no metric", CLAIMED.replace('metric = "D1"\nvalue', 'metric = "D2"\nvalue'),
     "has no metric 'D2'"),
    ("claim names a start scale not run",
     CLAIMED.replace('setting = "first"\nmetric = "D1"', 'setting = "first.init0.7"\n'
                     'metric = "D1"'),
     "no setting 'first.init0.7'"),
    ("claims without headline", CLAIMED.replace('headline = "median"\n', ""),
     "claims need `headline`"),
    ("data names no setting", CLAIMED.replace('data = "first"', 'data = "zzz"'),
     "data = 'zzz' is not a setting"),
    ("slower metric not in the slower setting",
     CLAIMED.replace('slower = "again"', 'slower = "again"\nslower_metric = "W"'),
     "setting 'again' has no metric 'W'"),
    ("unknown expectation", CLAIMED.replace('expect = "slope"', 'expect = "faster"'),
     "expect"),
]


@pytest.mark.parametrize("label,text,message", BAD, ids=[b[0] for b in BAD])
def test_bad_claims_are_refused_with_one_line(tmp_path, label, text, message):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(InputError) as e:
        parse_config(read_toml(p), str(p))
    assert message in str(e.value) and "\n" not in str(e.value)


def test_a_claim_may_name_a_start_scale_copy(tmp_path):
    """"first.init0.3" is made by init_scales: a claim may name it before it exists, and the
    resolved config judges it on that copy."""
    text = CLAIMED.replace('setting = "first"\nmetric = "D1"',
                           'setting = "first.init0.3"\nmetric = "D1"')
    p = tmp_path / "copy.toml"
    p.write_text(text)
    config = runner.resolve(p)
    assert config.claims[0].setting == "first.init0.3"
    assert "first.init0.3" in [s.name for s in config.settings]


def test_attention_synthetic_gates_fit_the_same_responses():
    """The shipped attention_synthetic config writes the softmax truth's sigmoid
    representation (scores g and -g) for its sigmoid settings, which read the softmax
    setting's data stream: the simulated responses agree to rounding, so the gates are fitted
    to the same data."""
    from pathlib import Path

    from moestat.experiments.grid import replicate_keys
    from moestat.experiments.settings import built, truth_at
    from moestat.experiments.simulation import simulate

    root = Path(__file__).resolve().parents[1]
    path = root / "experiments" / "attention_synthetic.toml"
    config = parse_config(read_toml(path), str(path))
    ys = []
    for s in config.settings:
        text = s.model_dump_json()
        keys = replicate_keys(config.seed, s.data_stream, 500, [0, 1])
        ys.append(np.asarray(simulate(built(text), keys, truth_at(text, 500), 500)[1]))
    assert {s.data_stream for s in config.settings} == {"softmax_exact"}
    for y in ys[1:]:
        np.testing.assert_allclose(y, ys[0], rtol=0, atol=1e-12)
