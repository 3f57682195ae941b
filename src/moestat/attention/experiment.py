"""Sample efficiency of softmax vs sigmoid attention on real data (docs/results.md).

A config with `kind = "attention_classification"` (experiments/attention_digits.toml,
attention_breast_cancer.toml) trains the encoder classifier (transformer.py) on fractions of a
scikit-learn bundled data set's training split, for each arm (attention recipe: softmax,
sigmoid with the bias fixed at -log(n_tokens), sigmoid with that bias learned) and seed, and
reports test accuracy per (arm, fraction): mean, sd, the smallest fraction whose mean accuracy
reaches `target_accuracy`, and each arm's paired difference from the first arm (same seeds)
with its 95 % t-interval.

Data: digits — the 1797 8x8 images (pixel values 0..16, scaled to [0, 1]), each cut into 2x2
patches read row by row: 16 tokens of 4 values; breast_cancer — 569 tumours, 30 features, one
token per feature, standardised by the training split. A fixed stratified split (test_size,
random_state 0) into train and test. Seed s draws its stratified subset of the training split
(train_test_split(train_size=fraction, stratify, random_state=s)) and initialises the model
and the minibatches from PRNGKey(s), under every arm; 100 % uses the whole split (seeds differ
only in initialisation and batches).

Run directory: config.resolved.toml, cells/<key>.parquet (one per (arm, fraction): a row per
seed, written atomically, resumable, checksummed like rate-study cells), summary.json
(`report --json`: {"experiment", "accuracy": [{gate, fraction, mean, sd, seeds}, ...],
"differences": [{gate, baseline, fraction, seeds, mean, ci95, verdict}, ...], ...}),
accuracy.png.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from moestat import __version__
from moestat.attention.train import TrainSettings, make_classifier, train_and_test
from moestat.experiments import runner
from moestat.experiments.config import CLASSIFICATION_KIND, Strict, pick_preset
from moestat.experiments.config_reading import read_toml, validate
from moestat.experiments.store import cells_dir, config_hash, read_cell, write_cell
from moestat.files import save_figure_atomic, strict_json, write_text_atomic

KIND = CLASSIFICATION_KIND
Fraction = Annotated[float, Field(gt=0, le=1)]
# an arm is an attention recipe: (layer gate, learnable sigmoid bias). "sigmoid": the bias
# fixed at -log(n_tokens); "sigmoid_learned_bias": the same bias as a trained parameter
ARMS = {"softmax": ("softmax", False), "sigmoid": ("sigmoid", False),
        "sigmoid_learned_bias": ("sigmoid", True)}
Arm = Literal["softmax", "sigmoid", "sigmoid_learned_bias"]


class ModelSettings(Strict):
    width: Annotated[int, Field(ge=4, le=1024)] = 32
    heads: Annotated[int, Field(ge=1, le=64)] = 4
    layers: Annotated[int, Field(ge=1, le=24)] = 2


class Training(Strict):
    steps: Annotated[int, Field(ge=1, le=1_000_000)] = 1500
    batch: Annotated[int, Field(ge=1, le=100_000)] = 64
    learning_rate: Annotated[float, Field(gt=0, le=10)] = 3e-3
    weight_decay: Annotated[float, Field(ge=0, le=10)] = 1e-4
    warmup: Annotated[int, Field(ge=0)] = 100


class ClassificationPreset(Strict):
    fractions: list[Fraction] | None = None
    seeds: Annotated[int, Field(ge=1, le=1000)] | None = None
    steps: Annotated[int, Field(ge=1, le=1_000_000)] | None = None


class ClassificationConfig(Strict):
    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")]
    kind: Literal["attention_classification"]
    description: str = ""
    dataset: Literal["digits", "breast_cancer"] = "digits"
    gates: Annotated[list[Arm], Field(min_length=1)] = ["softmax", "sigmoid"]
    fractions: Annotated[list[Fraction], Field(min_length=1)]
    seeds: Annotated[int, Field(ge=1, le=1000)] = 5
    test_size: Annotated[float, Field(gt=0, lt=1)] = 0.25
    target_accuracy: Annotated[float, Field(gt=0, le=1)] = 0.9
    model: ModelSettings = ModelSettings()
    training: Training = Training()
    presets: dict[str, ClassificationPreset] = {}

    def with_preset(self, preset: str | None) -> ClassificationConfig:
        if preset is None:
            return self
        p = pick_preset(self.presets, preset)
        changes = {k: v for k, v in (("fractions", p.fractions), ("seeds", p.seeds))
                   if v is not None}
        if p.steps is not None:
            changes["training"] = self.training.model_copy(update={"steps": p.steps})
        return self.model_copy(update=changes)


def resolve(path, preset: str | None = None) -> ClassificationConfig:
    return parse(read_toml(path), str(path)).with_preset(preset)


def cell_key(chash: str, gate: str, fraction: float) -> str:
    return hashlib.sha256(f"{chash}|{gate}|{fraction!r}".encode()).hexdigest()[:24]


# ---- data -----------------------------------------------------------------------------------
PATCH = 2


def digits_tokens(test_size: float):
    """(X_train, y_train, X_test, y_test); X (n, 16, 4): 2x2 patches of the 8x8 image in [0, 1]."""
    from sklearn.datasets import load_digits

    d = load_digits()
    img = d.images.astype(np.float32) / 16.0
    side = img.shape[1] // PATCH
    tokens = img.reshape(-1, side, PATCH, side, PATCH).transpose(0, 1, 3, 2, 4)
    tokens = tokens.reshape(len(img), side * side, PATCH * PATCH)
    return _split(tokens, d.target, test_size)


def breast_cancer_tokens(test_size: float):
    """(X_train, y_train, X_test, y_test); X (n, 30, 1): one token per feature (the learned
    positions say which), standardised by the training split's mean and sd."""
    from sklearn.datasets import load_breast_cancer

    d = load_breast_cancer()
    X_train, y_train, X_test, y_test = _split(d.data.astype(np.float32), d.target, test_size)
    mu, sd = X_train.mean(axis=0), X_train.std(axis=0)
    return (((X_train - mu) / sd)[..., None], y_train, ((X_test - mu) / sd)[..., None],
            y_test)


DATASETS = {"digits": digits_tokens, "breast_cancer": breast_cancer_tokens}


def _split(X, y, test_size: float):
    """The fixed stratified train / test split (random_state 0)."""
    from sklearn.model_selection import train_test_split

    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_size, stratify=y, random_state=0)
    return X_train, y_train, X_test, y_test


def subsets(y_train, fraction: float, seeds) -> list[np.ndarray]:
    """Seed s's stratified training subset (indices into the training split)."""
    from sklearn.model_selection import train_test_split

    if fraction >= 1.0:
        return [np.arange(len(y_train)) for _ in seeds]
    idx = np.arange(len(y_train))
    return [train_test_split(idx, train_size=fraction, stratify=y_train, random_state=s)[0]
            for s in seeds]


# ---- running --------------------------------------------------------------------------------
def run_cell(config: ClassificationConfig, gate: str, fraction: float, data) -> dict:
    """Every seed of one (arm, fraction); seed s uses the same subset, initialisation key and
    minibatch key under every arm (paired)."""
    X_train, y_train, X_test, y_test = data
    seeds = list(range(config.seeds))
    idx = subsets(y_train, fraction, seeds)
    m = config.model
    layer_gate, learned = ARMS[gate]
    make = make_classifier(X_train.shape[1], X_train.shape[2], int(np.max(y_train)) + 1,
                           layer_gate, m.width, m.heads, m.layers, learned)
    t = config.training
    acc, seconds, loss = train_and_test(
        make, np.stack([X_train[i] for i in idx]), np.stack([y_train[i] for i in idx]),
        X_test, y_test, seeds,
        TrainSettings(t.steps, t.batch, t.learning_rate, t.weight_decay, t.warmup))
    n_train = len(idx[0])
    per_seed = seconds / len(seeds)
    epochs = t.steps * t.batch / n_train
    return {"gate": [gate] * len(seeds), "fraction": [fraction] * len(seeds), "seed": seeds,
            "n_train": [n_train] * len(seeds), "accuracy": acc.tolist(),
            "final_loss": loss.tolist(), "train_seconds": [per_seed] * len(seeds),
            "seconds_per_epoch": [per_seed / epochs] * len(seeds),
            "version": [__version__] * len(seeds)}


def parse(data: dict, source: str = "config") -> ClassificationConfig:
    return validate(ClassificationConfig, data, source)


def prepare_out(config: ClassificationConfig, out: Path, resume: bool) -> None:
    """The run directory's resolved config, as for rate studies (runner.prepare_out)."""
    runner.prepare_out(config, out, resume, parse=parse)


def run(config: ClassificationConfig, out: Path, on_cell=None) -> int:
    """Train every missing (gate, fraction) cell; returns how many were computed."""
    chash = config_hash(config)
    todo = [(g, f) for g in config.gates for f in config.fractions
            if not (cells_dir(out) / f"{cell_key(chash, g, f)}.parquet").exists()]
    data = DATASETS[config.dataset](config.test_size) if todo else None
    total, done = len(config.gates) * len(config.fractions), 0
    for gate, fraction in todo:
        rows = run_cell(config, gate, fraction, data)
        write_cell(out, cell_key(chash, gate, fraction), rows)
        done += 1
        if on_cell:
            on_cell(total - len(todo) + done, total)
    return len(todo)


def report(out: Path) -> dict:
    """Accuracy per (gate, fraction) and the smallest fraction reaching the target."""
    config = runner.load_resolved(out, parse=parse)
    chash = config_hash(config)
    entries, missing = [], 0
    seeds_acc = {}  # (gate, fraction) -> {seed: accuracy}, for the paired differences
    for gate in config.gates:
        for f in config.fractions:
            path = cells_dir(out) / f"{cell_key(chash, gate, f)}.parquet"
            table = read_cell(path) if path.exists() else None
            if table is None:
                missing += 1
                continue
            rows = table.to_pydict()
            seeds_acc[gate, f] = dict(zip(rows["seed"], rows["accuracy"], strict=True))
            acc = np.asarray(rows["accuracy"], float)
            entries.append({"gate": gate, "fraction": f, "mean": float(acc.mean()),
                            "sd": float(acc.std(ddof=1)) if acc.size > 1 else 0.0,
                            "min": float(acc.min()), "max": float(acc.max()),
                            "seeds": int(acc.size), "n_train": int(rows["n_train"][0]),
                            "seconds_per_epoch": float(np.mean(rows["seconds_per_epoch"])),
                            "train_seconds": float(np.mean(rows["train_seconds"]))})
    reach = {}
    for gate in config.gates:
        ok = sorted(e["fraction"] for e in entries
                    if e["gate"] == gate and e["mean"] >= config.target_accuracy)
        reach[gate] = ok[0] if ok else None
    return {"experiment": config.name, "kind": KIND, "complete": missing == 0,
            "cells_done": len(entries), "cells_total": len(entries) + missing,
            "target_accuracy": config.target_accuracy, "accuracy": entries,
            "smallest_fraction_reaching_target": reach,
            "differences": paired_differences(config, seeds_acc)}


def paired_differences(config: ClassificationConfig, seeds_acc: dict) -> list[dict]:
    """Per fraction and arm other than the first: accuracy(arm) - accuracy(first arm) over the
    seeds both ran (same subset, initialisation and batches), its mean and 95 % t-interval."""
    from scipy import stats

    base, out = config.gates[0], []
    for gate in config.gates[1:]:
        for f in config.fractions:
            a, b = seeds_acc.get((gate, f)), seeds_acc.get((base, f))
            if not a or not b:
                continue
            d = np.array([a[s] - b[s] for s in sorted(set(a) & set(b))])
            half = (float(stats.t.ppf(0.975, d.size - 1) * d.std(ddof=1) / np.sqrt(d.size))
                    if d.size > 1 else float("nan"))
            lo, hi = float(d.mean() - half), float(d.mean() + half)
            verdict = "higher" if lo > 0 else "lower" if hi < 0 else "no difference detected"
            out.append({"gate": gate, "baseline": base, "fraction": f, "seeds": int(d.size),
                        "mean": float(d.mean()), "ci95": [lo, hi], "verdict": verdict})
    return out


def write_summary(out: Path) -> dict:
    rep = report(out)
    write_text_atomic(Path(out) / "summary.json", strict_json(rep, indent=2) + "\n")
    return rep


def save_figure(out: Path, path: Path | None = None) -> Path:
    """Left: test accuracy (mean +/- sd over seeds) against the training fraction, one line
    per arm, log x-axis, the target accuracy dotted. Right: each arm's paired difference from
    the first arm with its 95 % interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rep = report(out)
    path = Path(path or Path(out) / "accuracy.png")
    fig, (ax, dx) = plt.subplots(1, 2, figsize=(10.5, 4))
    for gate in dict.fromkeys(e["gate"] for e in rep["accuracy"]):
        es = sorted((e for e in rep["accuracy"] if e["gate"] == gate), key=lambda e: e["fraction"])
        ax.errorbar([100 * e["fraction"] for e in es], [e["mean"] for e in es],
                    yerr=[e["sd"] for e in es], marker="o", capsize=3, label=f"{gate} attention")
    ax.axhline(rep["target_accuracy"], ls=":", c="grey", label="target")
    ax.set_xscale("log")
    ax.set_xlabel("training data used (% of the training split)")
    ax.set_ylabel("test accuracy (mean +/- sd over seeds)")
    ax.set_title(rep["experiment"])
    ax.legend()
    for gate in dict.fromkeys(e["gate"] for e in rep["differences"]):
        es = sorted((e for e in rep["differences"] if e["gate"] == gate),
                    key=lambda e: e["fraction"])
        m = np.array([e["mean"] for e in es])
        err = np.array([[e["mean"] - e["ci95"][0], e["ci95"][1] - e["mean"]] for e in es]).T
        dx.errorbar([100 * e["fraction"] for e in es], m, yerr=err, marker="o", capsize=3,
                    label=f"{gate} - {es[0]['baseline']}")
    dx.axhline(0.0, c="grey", lw=0.8)
    dx.set_xscale("log")
    dx.set_xlabel("training data used (% of the training split)")
    dx.set_ylabel("paired accuracy difference (mean, 95% CI)")
    dx.set_title("same seeds: subset, initialisation, batches")
    if rep["differences"]:
        dx.legend()
    fig.tight_layout()
    save_figure_atomic(fig, path)
    plt.close(fig)
    return path

