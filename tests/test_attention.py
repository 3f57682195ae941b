"""Softmax vs sigmoid self-attention: masking, shapes, gradients, the MoE view of
one attention row, and the digits experiment's plumbing (its statistics:
tests/test_reproductions.py)."""

from __future__ import annotations

import json
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from moestat.attention import EncoderClassifier, SelfAttention, attention_weights, moe_row

N, WIDTH, HEADS = 6, 8, 2


def _layer(gate, **kw):
    return SelfAttention(WIDTH, HEADS, gate, key=jax.random.PRNGKey(0), dtype=jnp.float64, **kw)


def _x(seed=1):
    return jax.random.normal(jax.random.PRNGKey(seed), (N, WIDTH), jnp.float64)


@pytest.mark.parametrize("gate", ["softmax", "sigmoid"])
def test_masked_keys_get_exactly_zero_weight(gate):
    mask = jnp.array([True, False, True, True, False, True])
    w = _layer(gate).weights(_x(), mask)
    assert w.shape == (HEADS, N, N)
    assert bool(jnp.all(w[..., ~mask] == 0.0)) and bool(jnp.all(w[..., mask] > 0.0))
    if gate == "softmax":  # normalised over the unmasked keys
        np.testing.assert_allclose(np.asarray(w.sum(-1)), 1.0, rtol=1e-12)


def test_sigmoid_default_bias_is_minus_log_of_the_unmasked_key_count():
    scores = jax.random.normal(jax.random.PRNGKey(2), (3, 5), jnp.float64)
    mask = jnp.array([True, True, False, True, False])
    w = attention_weights(scores, "sigmoid", key_mask=mask)
    expect = jnp.where(mask, jax.nn.sigmoid(scores - math.log(3)), 0.0)
    np.testing.assert_allclose(np.asarray(w), np.asarray(expect), rtol=1e-14)
    none = attention_weights(scores, "softmax", key_mask=jnp.zeros(5, bool))
    assert bool(jnp.all(none == 0.0))  # no key to attend: zeros, not NaN


@pytest.mark.parametrize("gate,learnable", [("softmax", False), ("sigmoid", False),
                                            ("sigmoid", True)])
def test_shapes_and_gradients(gate, learnable):
    layer = _layer(gate, learnable_bias=learnable, n_tokens=N)
    x = _x()
    assert layer(x).shape == (N, WIDTH)

    def loss(m):
        return jnp.sum(jnp.tanh(m(x)))

    g = eqx.filter_grad(loss)(layer)
    leaves = jax.tree_util.tree_leaves(eqx.filter(g, eqx.is_array))
    assert all(bool(jnp.all(jnp.isfinite(v))) for v in leaves)
    assert all(float(jnp.max(jnp.abs(v))) > 0 for v in leaves)  # every weight is trained
    assert (layer.bias is not None) == learnable
    clf = EncoderClassifier(16, 4, 10, gate=gate, learnable_bias=learnable,
                            key=jax.random.PRNGKey(3))
    tokens = jax.random.uniform(jax.random.PRNGKey(4), (16, 4))
    assert clf(tokens).shape == (10,) and clf(tokens).dtype == jnp.float32
    gc = eqx.filter_grad(lambda m: jax.nn.logsumexp(m(tokens)) - m(tokens)[3])(clf)
    assert all(bool(jnp.all(jnp.isfinite(v)))
               for v in jax.tree_util.tree_leaves(eqx.filter(gc, eqx.is_array)))


@pytest.mark.parametrize("gate,learnable", [("softmax", False), ("sigmoid", False),
                                            ("sigmoid", True)])
def test_the_moe_view_of_a_row_is_the_layer(gate, learnable):
    """Every head and row through moestat's quadratic-gate linear-expert MoE equals the layer
    (random weights), and the heads through W_o give the layer's output."""
    layer = _layer(gate, learnable_bias=learnable, n_tokens=N)
    if learnable:
        layer = eqx.tree_at(lambda m: m.bias, layer, jnp.asarray(0.37))
    x = _x(5)
    heads = layer.heads(x)
    view = jnp.stack([jnp.stack([moe_row(layer, x, h, i) for i in range(N)])
                      for h in range(HEADS)])
    assert float(jnp.max(jnp.abs(view - heads))) < 1e-6
    out = jnp.transpose(view, (1, 0, 2)).reshape(N, -1) @ layer.wo
    assert float(jnp.max(jnp.abs(out - layer(x)))) < 1e-6


TINY = """
name = "tiny_digits"
kind = "attention_classification"
gates = ["softmax", "sigmoid"]
fractions = [0.1, 1.0]
seeds = 2
target_accuracy = 0.5
[model]
width = 8
heads = 2
layers = 1
[training]
steps = 10
batch = 32
"""


def _tiny_dict() -> dict:
    import tomllib

    return tomllib.loads(TINY)


def test_digits_experiment_runs_reports_and_resumes(tmp_path, capsys):
    from moestat import cli

    cfg = tmp_path / "d.toml"
    cfg.write_text(TINY)
    out = tmp_path / "run"
    assert cli.main(["run", str(cfg), "--out", str(out)]) == 0
    capsys.readouterr()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["experiment"] == "tiny_digits" and summary["complete"]
    assert {(e["gate"], e["fraction"], e["seeds"]) for e in summary["accuracy"]} == {
        (g, f, 2) for g in ("softmax", "sigmoid") for f in (0.1, 1.0)}
    assert all(0.0 <= e["mean"] <= 1.0 and e["n_train"] in (134, 1347)
               for e in summary["accuracy"])
    assert (out / "accuracy.png").stat().st_size > 0
    files = sorted((out / "cells").glob("*.parquet"))
    stamps = [f.stat().st_mtime_ns for f in files]
    assert cli.main(["run", str(cfg), "--out", str(out)]) == 0  # resume: nothing recomputed
    assert [f.stat().st_mtime_ns for f in files] == stamps
    capsys.readouterr()
    assert cli.main(["report", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == summary["accuracy"]
    diffs = summary["differences"]  # sigmoid - softmax, per fraction, over the 2 seeds
    assert [(d["gate"], d["baseline"], d["fraction"], d["seeds"]) for d in diffs] == [
        ("sigmoid", "softmax", f, 2) for f in (0.1, 1.0)]


def test_paired_differences_are_per_seed_with_a_t_interval():
    """mean of acc(arm, s) - acc(first arm, s) over the shared seeds, 95 % t-interval
    (scipy's ttest_rel gives the same mean and interval), and the verdict from the interval."""
    from scipy import stats

    from moestat.attention.experiment import paired_differences, parse

    config = parse({**_tiny_dict(), "gates": ["softmax", "sigmoid", "sigmoid_learned_bias"],
                    "fractions": [0.5]})
    rng = np.random.default_rng(0)
    base = rng.uniform(0.8, 0.9, 12)
    acc = {("softmax", 0.5): dict(enumerate(base)),
           ("sigmoid", 0.5): dict(enumerate(base + 0.05 + rng.normal(0, 0.01, 12))),
           ("sigmoid_learned_bias", 0.5): dict(enumerate(base + rng.normal(0, 0.01, 12)))}
    acc["sigmoid", 0.5].pop(11)  # a seed one arm lacks is left out of its pairs
    out = {d["gate"]: d for d in paired_differences(config, acc)}
    ref = stats.ttest_rel([acc["sigmoid", 0.5][s] for s in range(11)], base[:11])
    lo, hi = ref.confidence_interval(0.95)
    assert out["sigmoid"]["seeds"] == 11
    np.testing.assert_allclose(out["sigmoid"]["ci95"], [lo, hi], rtol=1e-9)
    assert out["sigmoid"]["verdict"] == "higher"
    assert out["sigmoid_learned_bias"]["verdict"] == "no difference detected"


def test_breast_cancer_tokens_and_the_learned_bias_arm():
    """One standardised token per feature (training split: mean 0, sd 1; the test split uses
    the training statistics), both classes in both splits; the learned-bias arm's layers carry
    a bias parameter initialised at -log(n_tokens), the fixed arm's none."""
    from moestat.attention.experiment import ARMS, breast_cancer_tokens
    from moestat.attention.train import make_classifier

    X_train, y_train, X_test, y_test = breast_cancer_tokens(0.25)
    assert X_train.shape == (426, 30, 1) and X_test.shape == (143, 30, 1)
    np.testing.assert_allclose(X_train.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(X_train.std(axis=0), 1, atol=1e-4)
    assert set(y_train) == set(y_test) == {0, 1}
    for arm, learned in (("sigmoid", False), ("sigmoid_learned_bias", True)):
        gate, flag = ARMS[arm]
        model = make_classifier(30, 1, 2, gate, 8, 2, 1, flag)(jax.random.PRNGKey(0))
        bias = model.blocks[0].attn.bias
        assert (bias is not None) == learned
        if learned:
            np.testing.assert_allclose(float(bias), -math.log(30), rtol=1e-6)


@pytest.mark.parametrize("text,message", [
    (TINY.replace("fractions = [0.1, 1.0]", "fractions = [0.0, 1.0]"), "fractions.0"),
    (TINY.replace("seeds = 2", "seeds = 0"), "seeds"),
    (TINY.replace('gates = ["softmax", "sigmoid"]', 'gates = ["relu"]'), "gates.0"),
    ('dataset = "iris"\n' + TINY, "dataset"),
    (TINY + "unknown = 1\n", "unknown: unknown key"),
])
def test_bad_classification_configs_exit_2_with_one_line(tmp_path, capsys, text, message):
    from moestat import cli

    cfg = tmp_path / "d.toml"
    cfg.write_text(text)
    assert cli.main(["run", str(cfg), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
