"""Held-out log-loss of MixtureOfExpertsClassifier against logistic regression on
scikit-learn's bundled classification data sets (iris, wine, breast cancer).

Per data set and seed: a stratified 70 / 30 split (seeds 0..S-1); features standardised on
the training part for every model (the classifier standardises internally too); models:
scikit-learn's LogisticRegression with its default L2 penalty (C = 1) and without penalty,
and the classifier (softmax gate, 20 restarts) with k = 1 (the unpenalised multinomial
logit, fitted by the MoE machinery), 2 and 3 experts. Printed: mean held-out log-loss (its
standard error over the splits) and accuracy, and how many of the classifier's fits were
flagged degenerate (a coefficient on its box: labels that an expert or the gate separates).
Log-losses are clipped as scikit-learn's log_loss clips probabilities (eps = float64's).

Run: .venv/bin/python benchmarks/classifier_heldout.py [--seeds 10] [--data iris wine]
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
from sklearn.datasets import load_breast_cancer, load_iris, load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from moestat import MixtureOfExpertsClassifier

DATA = {"iris": load_iris, "wine": load_wine, "breast_cancer": load_breast_cancer}


def models(seed: int) -> dict:
    return {
        "logistic regression, C = 1": LogisticRegression(max_iter=10_000),
        "logistic regression, no penalty": LogisticRegression(penalty=None, max_iter=10_000),
        **{f"MoE classifier, k = {k}": MixtureOfExpertsClassifier(n_experts=k, n_init=20,
                                                                  random_state=seed)
           for k in (1, 2, 3)},
    }


def main(seeds: int, names: list[str]) -> None:
    print("| data set | model | held-out log-loss (s.e.) | accuracy | degenerate fits |")
    print("|---|---|---|---|---|")
    for name in names:
        load = DATA[name]
        X, y = load(return_X_y=True)
        rows: dict[str, list] = {}
        for seed in range(seeds):
            Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=seed,
                                                  stratify=y)
            scaler = StandardScaler().fit(Xtr)
            Xtr, Xte = scaler.transform(Xtr), scaler.transform(Xte)
            for label, m in models(seed).items():
                with warnings.catch_warnings(record=True):
                    warnings.simplefilter("always")
                    m.fit(Xtr, ytr)
                p = m.predict_proba(Xte)
                degenerate = bool(getattr(m, "degenerate_", []))
                rows.setdefault(label, []).append(
                    (log_loss(yte, p, labels=m.classes_), np.mean(m.predict(Xte) == yte),
                     degenerate))
        for label, r in rows.items():
            ll, acc, deg = (np.asarray(c, dtype=float) for c in zip(*r, strict=True))
            flagged = f"{int(deg.sum())} / {seeds}" if label.startswith("MoE") else ""
            print(f"| {name} | {label} | {ll.mean():.4f} ({ll.std(ddof=1) / np.sqrt(seeds):.4f})"
                  f" | {acc.mean():.3f} | {flagged} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--data", nargs="+", choices=list(DATA), default=list(DATA))
    args = parser.parse_args()
    main(args.seeds, args.data)
