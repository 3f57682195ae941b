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


@pytest.mark.slow
@pytest.mark.parametrize("name", ["contaminated_distinguishable",
                                  "contaminated_nondistinguishable", "contaminated_input_free"])
def test_quick_preset_slopes(name, tmp_path):
    config = resolve(ROOT / "experiments" / f"{name}.toml", "quick")
    prepare_out(config, tmp_path, True)
    run_sweep(config, tmp_path)
    rep = report(tmp_path, n_boot=1000)
    assert rep["complete"]
    checked = 0
    for r in rep["rates"]:
        assert "error" not in r, r
        assert r["n_failed"] == 0
        if (name, r["setting"]) in EXCLUDED:
            continue
        assert r["n_nonconverged"] == 0, r
        assert abs(r["slope"] - r["theory"]) <= TOL, r
        checked += 1
    kept = [x for x in config.settings if (name, x.name) not in EXCLUDED]
    assert checked == len(kept) * len(config.metrics)
