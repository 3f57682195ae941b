"""Quick presets of the paper reproductions hold their rates (slow: ~3 minutes on 2 cores).

Each quick preset has 5-6 sample sizes over a 20x range and 8-10 replicates; its bootstrap 95 %
slope intervals measured 0.05-0.27 wide on each side (median ~0.1), so a fixed seed's slope is
required within TOL = 0.3 of the theory slope: about three median half-widths, wide enough for
the short grid's curvature, narrow enough to catch a wrong rate class (a parametric -0.5 where
-0.25 is expected, or no decrease at all). The full presets and their comparison with the
papers are in docs/results.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from moestat.experiments.runner import prepare_out, report, resolve, run_sweep

ROOT = Path(__file__).resolve().parents[1]
TOL = 0.3

# nu_varies is left out on purpose: on the quick grid EM stops at max_iter in most fits (a
# flat likelihood ridge where the prompt merges with the frozen expert), so its slopes measure
# the optimiser, not the estimator; docs/results.md shows the investigation.
EXCLUDED = {("contaminated_nondistinguishable", "nu_varies")}


def _run_quick(name, tmp_path):
    """Run the quick preset of experiments/NAME.toml into tmp_path: (config, report rows)."""
    config = resolve(ROOT / "experiments" / f"{name}.toml", "quick")
    prepare_out(config, tmp_path, True)
    run_sweep(config, tmp_path)
    rep = report(tmp_path, n_boot=1000)
    assert rep["complete"]
    return config, rep["rates"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["contaminated_distinguishable",
                                  "contaminated_nondistinguishable", "contaminated_input_free"])
def test_quick_preset_slopes(name, tmp_path):
    config, rates = _run_quick(name, tmp_path)
    checked = 0
    for r in rates:
        assert "error" not in r, r
        assert r["n_failed"] == 0
        if (name, r["setting"]) in EXCLUDED:
            continue
        assert r["n_not_converged"] == 0, r
        assert abs(r["slope"] - r["theory"]) <= TOL, r
        checked += 1
    kept = [x for x in config.settings if (name, x.name) not in EXCLUDED]
    assert checked == len(kept) * len(config.metrics)


# ---- gating-function papers --------------------------------------------------------------
# What a quick preset (5-6 n over a 10-20x range, 10 replicates) can and cannot show, from its
# runs (docs/results.md): exact-fit slopes have 95 % intervals ~0.1-0.2 wide on each side, so they
# are held within TOL = 0.3 of -0.5 like the contaminated presets; density errors (hellinger, l2)
# are the tightest (half-widths ~0.05) and are held within TOL in every setting; over-specified
# parameter slopes are not held (intervals up to 1 wide: a few wandering over-fitted atoms), only
# the robust median slope of the setting's Voronoi loss (theory -0.5) must lie in [-1.1, -0.1]:
# clearly decreasing, and no steeper than the quick runs' pre-asymptotic -1.04 (top-K) allows.
EXACT_PARAMETRIC = {
    "softmax_gaussian": ["exact"],
    "topk_softmax": ["exact"],
    "temperature_gating": ["activation"],
}
VORONOI = {"D1", "D2", "D_LSE"}


def _quick_report(name, tmp_path):
    _, rates = _run_quick(name, tmp_path)
    return {(r["setting"], r["metric"]): r for r in rates}


def _check_common(name, rates, slope="slope"):
    """`slope`: "slope" (the mean's) or "median_slope" for a config whose declared headline
    is the median."""
    for (setting, metric), r in rates.items():
        assert "error" not in r, r
        assert r["n_failed"] == 0, r
        if metric in ("hellinger", "l2") and r["theory"] == -0.5:  # not K_fit too small
            assert abs(r[slope] + 0.5) <= TOL, r
        if setting in EXACT_PARAMETRIC.get(name, []) and r["theory"] == -0.5:
            assert r["n_not_converged"] == 0, r
            assert abs(r[slope] + 0.5) <= TOL, r
        if metric in VORONOI and r["theory"] == -0.5 and "over" in setting:
            assert -1.1 <= r["median_slope"] <= -0.1, r


@pytest.mark.slow
@pytest.mark.timeout(2700)  # lse_ridge_vs_linear fits the best of three starts: ~3x the time
@pytest.mark.parametrize("name", ["softmax_gaussian", "lse_ridge_vs_linear"])
def test_quick_gating_presets(name, tmp_path):
    rates = _quick_report(name, tmp_path)
    _check_common(name, rates)
    if name == "lse_ridge_vs_linear":
        # D_LSE's -1/2 is NOT held: on this grid its slope measures over-fitted copies leaving
        # the expert box (median slope -1.16 here, -0.80 in the full run; docs/results.md).
        # What holds: the over-fitted cell's expert slope decreases (median -0.36 here). The
        # linear-vs-ridge contrast (linear over-fitted intercept flat at low noise: median
        # slope -0.10 vs -0.54 in the full run) is NOT visible on the quick grid (-0.31 vs
        # -0.38 with 10 replicates up to n = 2e4), so it is not held here.
        assert -1.1 <= rates["ridge_sigmoid", "a@overfitted"]["median_slope"] <= -0.1


@pytest.mark.slow
def test_quick_topk_preset_and_k_fit_too_small(tmp_path):
    """K_fit = 3 (the rule) converges; K_fit = 2 with k = 4 cannot activate the split cell and
    the other expert together: its density error stays well above the K_fit = 3 fit's (3x at the
    largest n of the quick grid; the full run shows it does not decrease)."""
    rates = _quick_report("topk_softmax", tmp_path)
    _check_common("topk_softmax", rates)
    from moestat.experiments.store import read_rows

    cols = read_rows(tmp_path).to_pydict()
    n_max = max(cols["n"])

    def mean_hellinger(setting):
        v = [h for h, s, n in zip(cols["metric.hellinger"], cols["setting"], cols["n"],
                                  strict=True) if s == setting and n == n_max]
        return sum(v) / len(v)

    assert mean_hellinger("k_fit_too_small") >= 3 * mean_hellinger("over_specified")


@pytest.mark.slow
def test_quick_temperature_preset(tmp_path):
    """Activation gate: parametric. Temperature gate, fitted by direct MLE (tau moves): its raw
    beta1 does not decrease (slope within TOL of 0) and its final error follows the start's
    scale (the likelihood is flat along the scale ray), while the identifiable ratios
    (`*_scaled`) converge like -0.5 and do not depend on the start."""
    config, rates = _run_quick("temperature_gating", tmp_path)
    rates = {(r["setting"], r["metric"]): r for r in rates}
    assert config.headline == "median"  # declared: the 0.2 starts' few degenerate fits
    # (an expert without data; a non-finite D_r1_scaled in 3 of 520 fits of the full run)
    # move the means, so the copies from those starts are held by their medians only
    _check_common("temperature_gating", {k: r for k, r in rates.items() if ".init" not in k[0]},
                  "median_slope")
    slope = {k: r["median_slope"] for k, r in rates.items()}
    for gate, metric in (("temperature", "D_r1_scaled"), ("activation", "D1")):
        assert abs(slope[f"{gate}.init0.2", metric] + 0.5) <= TOL
    assert abs(slope["temperature", "beta1"]) <= TOL
    assert abs(slope["temperature", "D_r1_scaled"] + 0.5) <= TOL
    assert slope["temperature", "D_r1"] > slope["temperature", "D_r1_scaled"]
    moves = {e["metric"]: e["moves"] for e in report(tmp_path, n_boot=200)["init_scales"]
             if e["setting"] == "temperature"}
    assert moves["beta1"] and moves["tau"]
    assert not moves["beta1_scaled"] and not moves["D_r1_scaled"]


@pytest.mark.slow
def test_quick_sigmoid_vs_softmax_d1_preset(tmp_path):
    """Every setting's regression error and over-fitted cell share fall like n^(-1/2) (median
    slopes: a few fits with a misplaced copy make the mean slopes wander on a short grid);
    GELU's identifiable over-fitted expert converges under softmax and sigmoid regime 1."""
    rates = _quick_report("sigmoid_vs_softmax_d1", tmp_path)
    for (setting, metric), r in rates.items():
        assert "error" not in r, r
        if metric == "l2":
            assert abs(r["median_slope"] + 0.5) <= TOL, r
        # sigmoid_r2_linear is left out: sigmoid(-g) = 1 - sigmoid(g) lets linear experts move
        # the function between cells (h2 - sigmoid(g) h2), so its cell shares are not
        # identifiable either (quick run: median slope 0.00; full run: cell error 0.06-0.19
        # against a regression error of 3e-4; docs/results.md)
        if metric == "cell_l2@overfitted" and setting != "sigmoid_r2_linear":
            assert -1.1 <= r["median_slope"] <= -0.1, r
    for setting in ("softmax_gelu", "sigmoid_r1_gelu"):
        assert -1.1 <= rates[setting, "a@overfitted"]["median_slope"] <= -0.1


# ---- attention ---------------------------------------------------------------------------
@pytest.mark.slow
def test_quick_attention_digits_preset(tmp_path):
    """Quick preset (20 % and 100 % of the training split, 2 seeds, 300 steps): both gates
    learn the digits — at 100 % the mean test accuracy is >= 0.88 (quick run: softmax 0.943,
    sigmoid 0.928, seed sd ~0.015: a 3-sd margin) — and more data helps (the 100 % mean
    exceeds the 20 % mean for each gate; quick run: +0.08 / +0.07)."""
    from moestat.attention import experiment as ex

    config = ex.resolve(ROOT / "experiments" / "attention_digits.toml", "quick")
    ex.prepare_out(config, tmp_path, True)
    ex.run(config, tmp_path)
    rep = ex.report(tmp_path)
    assert rep["complete"]
    acc = {(e["gate"], e["fraction"]): e["mean"] for e in rep["accuracy"]}
    for gate in ("softmax", "sigmoid"):
        assert acc[gate, 1.0] >= 0.88, acc
        assert acc[gate, 1.0] > acc[gate, 0.2], acc


@pytest.mark.slow
def test_quick_attention_synthetic_preset(tmp_path):
    """Both quadratic gates on the same data: exact fits, every parameter and the regression
    error at n^(-1/2) (median slopes within TOL); over-specified fits, the regression error
    and the singleton expert within TOL of -1/2 and the over-fitted cell's share decreasing
    (median slope in [-1.1, -0.1]). The over-fitted linear experts themselves are a continuum
    and are not measured (docs/design.md)."""
    rates = _quick_report("attention_synthetic", tmp_path)
    for gate in ("softmax", "sigmoid"):
        for metric in ("A", "a", "b", "l2"):
            r = rates[f"{gate}_exact", metric]
            assert r["n_failed"] == 0 and abs(r["median_slope"] + 0.5) <= TOL, r
        for metric in ("l2", "a@singleton"):
            r = rates[f"{gate}_over", metric]
            assert r["n_failed"] == 0 and abs(r["median_slope"] + 0.5) <= TOL, r
        assert -1.1 <= rates[f"{gate}_over", "cell_l2@overfitted"]["median_slope"] <= -0.1
