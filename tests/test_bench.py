"""Benchmark plumbing (moestat.bench): what is measured and how the docs are rewritten. The
speeds themselves are measured in docs/performance.md, never asserted."""

from __future__ import annotations

import pytest

from moestat.bench import scaling


def test_scaling_suite_writes_its_section_and_one_figure_per_dimension(tmp_path, monkeypatch):
    monkeypatch.setattr(scaling, "BASE", {"n": 500, "k": 2, "d": 1, "R": 1})
    monkeypatch.setattr(scaling, "GRID", {"n": [300, 600], "k": [3], "d": [2], "R": [2]})
    configs = scaling.configurations()
    assert [(c["dimension"], c[c["dimension"]]) for c in configs] == [
        ("n", 300), ("n", 600), ("k", 3), ("d", 2), ("R", 2)]
    assert all(c["n"] == 10_000 for c in configs if c["dimension"] == "R")
    monkeypatch.setattr(scaling, "configurations", lambda quick=False: [
        dict(c, n=400) if c["dimension"] == "R" else c for c in configs])
    monkeypatch.setattr(scaling, "POINT_BUDGET", 1.0)  # the minimum, 5 iterations: plumbing
    records = scaling.run()
    assert len(records) == 5
    for r in records:
        assert r["iterations"] == 5
        assert r["moestat_point_iters_per_s"] > 0 and r["numpy_point_iters_per_s"] > 0
        assert r["ratio"] == pytest.approx(r["numpy_s"] / r["moestat_s"])
        assert r["numpy_peak_bytes_per_replicate"] > 0
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "performance.md").write_text(f"# P\n\nbefore\n{scaling.BEGIN}\nold\n{scaling.END}\n"
                                         "after\n")
    written = scaling.write_docs(records, docs)
    text = (docs / "performance.md").read_text()
    assert text.startswith("# P\n\nbefore\n") and text.endswith("after\n") and "old" not in text
    rows = [line.split(" | ")[0] for line in text.splitlines() if line.startswith("| ")]
    assert rows == ["| dimension", "| n", "| n", "| k", "| d", "| R"]
    assert sorted(p.name for p in written[1:]) == [f"scaling_{d}.png" for d in "Rdkn"]
    assert all(p.stat().st_size > 0 for p in written)
    (docs / "performance.md").write_text("no markers\n")
    with pytest.raises(ValueError, match="no <!-- scaling:begin -->"):
        scaling.write_docs(records, docs)
