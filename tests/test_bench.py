"""Benchmark plumbing (moestat.bench): what is measured and how the docs are rewritten. The
speeds themselves are measured in docs/performance.md, never asserted."""

from __future__ import annotations

import pytest

from moestat.bench import scaling


@pytest.mark.slow
def test_scaling_suite_writes_its_section_and_one_figure_per_dimension(tmp_path, monkeypatch):
    monkeypatch.setattr(scaling, "BASE", {"n": 500, "k": 2, "d": 1, "R": 1})
    monkeypatch.setattr(scaling, "GRID", {"n": [300, 600], "k": [3], "d": [2], "R": [2]})
    monkeypatch.setattr(scaling, "CONTAMINATED_BASE", {"n": 300, "R": 1})
    monkeypatch.setattr(scaling, "CONTAMINATED_GRID", {"n": [400], "R": [2]})
    configs = scaling.configurations()
    assert [(c["model"], c["dimension"], c[c["dimension"]]) for c in configs] == [
        ("softmax", "n", 300), ("softmax", "n", 600), ("softmax", "k", 3),
        ("softmax", "d", 2), ("softmax", "R", 2), ("contaminated", "n", 400),
        ("contaminated", "R", 2)]
    assert all(c["n"] == 10_000 for c in configs
               if c["dimension"] == "R" and c["model"] == "softmax")
    monkeypatch.setattr(scaling, "configurations", lambda quick=False: [
        dict(c, n=400) if c["dimension"] == "R" and c["model"] == "softmax" else c
        for c in configs])
    monkeypatch.setattr(scaling, "POINT_BUDGET", 1.0)  # the minimum, 5 iterations: plumbing
    records = scaling.run()
    assert len(records) == 7
    soft = [r for r in records if r["model"] == "softmax"]
    for r in soft:
        assert r["iterations"] == 5
        assert r["moestat_point_iters_per_s"] > 0 and r["numpy_point_iters_per_s"] > 0
        assert r["ratio"] == pytest.approx(r["numpy_s"] / r["moestat_s"])
        assert r["numpy_peak_bytes_per_replicate"] > 0
    cont = [r for r in records if r["model"] == "contaminated"]
    assert [(r["n"], r["R"], r["d"]) for r in cont] == [(400, 1, 8), (300, 2, 8)]
    for r in cont:
        assert r["baseline_fits_run"] == r["R"]  # <= BASELINE_FITS: every replicate timed
        assert r["ratio"] == pytest.approx(r["baseline_s"] / r["moestat_s"])
        assert r["moestat_fits_per_s"] == pytest.approx(r["R"] / r["moestat_s"])
        assert r["mean_iterations"] >= 1 and r["baseline_peak_bytes_per_replicate"] > 0
        # the same problem: BFGS and EM reach the same log-likelihood per sample
        assert r["max_loglik_gap_per_sample"] < 1e-3
    lines = [scaling.line(r) for r in records]  # the CLI's progress lines, both models
    assert "point-iter/s" in lines[0] and "SciPy BFGS" in lines[-1] and "fits/s" in lines[-1]
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "performance.md").write_text(f"# P\n\nbefore\n{scaling.BEGIN}\nold\n{scaling.END}\n"
                                         "after\n")
    written = scaling.write_docs(records, docs)
    text = (docs / "performance.md").read_text()
    assert text.startswith("# P\n\nbefore\n") and text.endswith("after\n") and "old" not in text
    rows = [line.split(" | ")[0] for line in text.splitlines() if line.startswith("| ")]
    assert rows == ["| dimension", "| n", "| n", "| k", "| d", "| R",
                    "| dimension", "| n", "| R"]
    assert sorted(p.name for p in written[1:]) == sorted(
        [f"scaling_{d}.png" for d in "Rdkn"] + ["scaling_contaminated_n.png",
                                                 "scaling_contaminated_R.png"])
    assert all(p.stat().st_size > 0 for p in written)
    (docs / "performance.md").write_text("no markers\n")
    with pytest.raises(ValueError, match="no <!-- scaling:begin -->"):
        scaling.write_docs(records, docs)
