"""A picture of a fitted model (`moestat fit ... --plot FILE`) and of its dendrogram of mixing
measures (`--dendrogram FILE`).

One feature: the data, each expert's mean h_i(x) (line width by its average gate weight) and,
below, the gate weights w_i(x), on a grid over the data's range. Several features: fitted
E[y | x] against the observed y, and the gate weights along the first principal direction of
the (standardised) features.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from moestat.errors import InputError
from moestat.files import save_figure_atomic

FORMATS = (".png", ".pdf", ".svg")


def check_plot_path(path: Path, flag: str = "--plot") -> None:
    """Refuse, before any work, a path the figure could not be written to."""
    if path.suffix.lower() not in FORMATS:
        raise InputError(f"{flag} {path}: the file name must end in {', '.join(FORMATS)}")
    if path.is_dir():
        raise InputError(f"{flag} {path} is a directory; name a file")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"{flag} {path}: directory {parent} does not exist")
    try:  # a trial file: permissions alone do not tell (root, read-only file systems)
        with tempfile.NamedTemporaryFile(dir=parent):
            pass
    except OSError as e:
        raise InputError(f"{flag} {path}: cannot write in {parent} ({e.strerror})") from None


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    save_figure_atomic(fig, path)
    plt.close(fig)
    return path


def plot_dendrogram(path: Path, tree: dict, title: str = "") -> Path:
    """Left: the dendrogram (leaves: the fitted experts with their weights p_i, the gate
    weights at the mean of x; heights
    p_i p_j / (p_i + p_j) ||theta_i - theta_j||^2). Right: DIC against the number of atoms,
    the selected level marked (moestat/dendrogram.py)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.cluster.hierarchy import dendrogram as draw

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2),
                                      gridspec_kw={"width_ratios": [1.6, 1]})
    labels = [f"{i + 1}\np={p:.2f}" for i, p in enumerate(tree["weights"])]
    draw(np.asarray(tree["linkage"], float), ax=left, labels=labels, color_threshold=0,
         above_threshold_color="0.25", leaf_font_size=8)
    left.set_ylabel("merge height")
    left.set_xlabel("expert, p = its gate weight at the mean of x", fontsize=8)
    left.set_title(f"dendrogram of the {tree['from_k']}-expert fit", fontsize=9)
    ks = [r["k"] for r in tree["levels"]]
    dic = np.array([r["dic"] for r in tree["levels"]])
    right.plot(ks, dic - dic.min(), "o-", color="0.25")
    right.plot([tree["selected_k"]], [0.0], "o", color="tab:red", ms=10, mfc="none",
               label=f"selected k = {tree['selected_k']}")
    right.set_yscale("symlog", linthresh=1.0)
    right.set_xticks(ks)
    right.set_xlabel("number of atoms")
    right.set_ylabel(f"DIC - min DIC   (DIC = -(height + {tree['omega']:.2f} x mean "
                     "log-lik.))", fontsize=8)
    right.legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    return _save(fig, path)


def plot_fit(path: Path, model, params, X, y, features, target) -> Path:
    """Draw the fit of `params` (user's scale) to X (n, d), y (n,) into `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    X, y = np.asarray(X, float), np.asarray(y, float)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6.5), sharex=X.shape[1] == 1,
                                      gridspec_kw={"height_ratios": [3, 1.4]})
    if X.shape[1] == 1:
        grid = np.linspace(X[:, 0].min(), X[:, 0].max(), 300)[:, None]
        means = np.asarray(model.expert_means(params, grid))
        weights = np.asarray(model.gate_weights(params, grid))
        top.scatter(X[:, 0], y, s=8, color="0.55", label="data")
        for i in range(means.shape[1]):
            top.plot(grid[:, 0], means[:, i], lw=0.8 + 3 * weights[:, i].mean(),
                     label=f"expert {i + 1}")
            bottom.plot(grid[:, 0], weights[:, i], label=f"w{i + 1}(x)")
        top.set_ylabel(target)
        top.legend(fontsize=8)
        bottom.set_xlabel(features[0])
    else:
        fitted = np.asarray(model.mean(params, X))
        top.scatter(y, fitted, s=8, color="0.35")
        lo, hi = min(y.min(), fitted.min()), max(y.max(), fitted.max())
        top.plot([lo, hi], [lo, hi], color="k", lw=0.8, ls="--")
        top.set_xlabel(f"observed {target}")
        top.set_ylabel("fitted E[y | x]")
        Z = (X - X.mean(0)) / np.where(X.std(0) > 0, X.std(0), 1.0)
        direction = np.linalg.svd(Z, full_matrices=False)[2][0]
        score = Z @ direction
        order = np.argsort(score)
        weights = np.asarray(model.gate_weights(params, X))
        for i in range(weights.shape[1]):
            bottom.plot(score[order], weights[order, i], label=f"w{i + 1}(x)")
        bottom.set_xlabel("first principal direction of the standardised features")
    bottom.set_ylabel("gate weight")
    bottom.set_ylim(-0.02, 1.02)
    bottom.legend(fontsize=8, ncol=min(weights.shape[1], 6))
    fig.suptitle(model.describe(), fontsize=9)
    return _save(fig, path)
