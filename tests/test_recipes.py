"""The d = 32 gating recipe's shipped draws, and named truth tables in configs."""

from __future__ import annotations

import numpy as np
import pytest

from moestat.errors import InputError
from moestat.experiments.config import load_config, parse_config, read_toml
from moestat.experiments.recipes import gating_truth, laplace_truth, softmax_reading
from moestat.shipped import experiment_path

# (shipped config, truth table) -> the recipe call that regenerates it
SHIPPED_DRAWS = {
    ("sigmoid_vs_softmax", "d32"): lambda: gating_truth(seed=2405, d=32, k=8, gated=7),
    ("cosine_router", "d32"): lambda: gating_truth(seed=2414, d=32, k=8, gated=6),
    ("laplace_gate", "laplace"): lambda: laplace_truth(seed=2402, d=1, k=2),
    ("laplace_gate", "softmax"): lambda: softmax_reading(laplace_truth(seed=2402, d=1, k=2)),
}


@pytest.mark.parametrize("config,table", list(SHIPPED_DRAWS), ids=lambda v: str(v))
def test_shipped_draw_is_the_recipe_with_its_seed(config, table):
    shipped = read_toml(experiment_path(config))["truths"][table]
    draw = SHIPPED_DRAWS[config, table]()
    assert set(draw) <= set(shipped)
    for field, value in draw.items():
        np.testing.assert_allclose(shipped[field], value, rtol=1e-6, atol=0)


def test_laplace_recipe_rejects_close_locations():
    """Locations closer than min_separation are redrawn; the softmax reading keeps every
    field but the gate's, whose slopes are W_i - W_k."""
    for seed in range(20):
        t = laplace_truth(seed, d=2, k=3, min_separation=0.3)
        W = np.asarray(t["gate.W"])
        gaps = np.linalg.norm(W[:, None] - W[None], axis=-1)[np.triu_indices(3, 1)]
        assert gaps.min() >= 0.3 and t["gate.beta0"][-1] == 0 and min(t["noise.var"]) > 0
        s = softmax_reading(t)
        np.testing.assert_allclose(s["gate.beta1"], W - W[-1], atol=1e-5)
        assert s["expert.a"] == t["expert.a"] and "gate.W" not in s


def test_recipe_law():
    """Rows past `gated` are 0; the drawn entries have the recipe's variances (0.01/d for the
    gate, 1/d for the experts: 4 s.e. of a variance estimate from ~1000 draws is ~18 %)."""
    draws = [gating_truth(seed, d=32, k=8, gated=6) for seed in range(5)]
    beta1 = np.concatenate([np.asarray(t["gate.beta1"])[:6] for t in draws])
    assert all(np.all(np.asarray(t["gate.beta1"])[6:] == 0) for t in draws)
    assert all(np.all(np.asarray(t["gate.beta0"])[6:] == 0) for t in draws)
    a = np.concatenate([np.asarray(t["expert.a"]) for t in draws])
    assert abs(beta1.var() / (0.01 / 32) - 1) < 0.18 and abs(a.var() / (1 / 32) - 1) < 0.18


def test_named_truth_tables_are_shared_and_checked():
    config = load_config(experiment_path("sigmoid_vs_softmax"))
    truths = {s.name: s.truth for s in config.settings}
    assert len({repr(t) for t in truths.values()}) == 1  # one table, every setting
    raw = read_toml(experiment_path("sigmoid_vs_softmax"))
    raw["settings"][0]["truth"] = "d64"
    with pytest.raises(InputError, match=r"settings\[0\]\.truth: no table \[truths\.d64\]"):
        parse_config(raw)

