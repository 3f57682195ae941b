"""`moestat fit`: one table, one model (or a range of numbers of experts), checked before any
work; the fitted model as plain data, optionally saved and drawn."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from moestat.errors import InputError, check_seed
from moestat.files import strict_json, write_text_atomic


def run_fit(data: Path, target: str, *, experts: str = "2", criterion: str = "bic",
            features: str | None = None, gate: str = "softmax", expert: str = "linear",
            noise: str = "gaussian", estimator: str = "em", n_init: int = 20,
            max_iter: int = 500, tol: float = 1e-8, seed: int = 0, save: Path | None = None,
            plot: Path | None = None, dendrogram: Path | None = None,
            bootstrap: int = 0, kind: str = "auto", finish: str = "none") -> dict:
    """Validate every argument, read the table, fit (each k of a range, keeping the one
    `criterion` prefers), write `save`, `plot` and `dendrogram`; returns `TableFit.summary`
    plus the data's names, the seed and, for a range, "selection" (with the largest fit's
    dendrogram of mixing measures); for one k with `dendrogram`, "dendrogram"; with
    `bootstrap` > 0, "bootstrap" (parametric-bootstrap SEs of the kept fit). kind
    "classification": the target holds labels ("classes" in the output, in the order of the
    experts' classes), fitted with multinomial experts. finish "newton": EM to 1e-6, then
    Newton steps (fit/em_newton.py)."""
    from moestat.expert_selection import check_criterion, parse_experts
    from moestat.process_exit import request_quick_exit

    request_quick_exit()  # (the command line leaves without the interpreter's teardown)
    check_seed(seed)  # every argument first: a refusal comes before JAX is imported
    if save is not None and save.is_dir():
        raise InputError(f"--save {save} is a directory; name a file")
    from moestat.fit_plot import check_plot_path

    if plot is not None:
        check_plot_path(plot)
    if dendrogram is not None:
        check_plot_path(dendrogram, "--dendrogram")
    for name, value in (("--n-init", n_init), ("--max-iter", max_iter)):
        if value < 1:
            raise InputError(f"{name} must be >= 1, got {value}")
    if bootstrap == 1 or bootstrap < 0:
        raise InputError(f"--bootstrap must be 0 (off) or >= 2, got {bootstrap}")
    if not tol > 0:
        raise InputError(f"--tol must be > 0, got {tol}")
    classify = kind == "classification"
    if kind not in ("auto", "mixture", "regression", "classification"):
        raise InputError(f"--kind must be auto, mixture, regression or classification, got "
                         f"{kind!r}")
    if classify and (expert != "linear" or noise != "gaussian"):
        raise InputError("--kind classification fits multinomial experts with the categorical "
                         "likelihood: drop --expert and --noise")
    if classify and plot is not None:
        raise InputError("--plot draws regression fits; not available with --kind "
                         "classification")
    ks = parse_experts(experts)
    if len(ks) > 1:
        check_criterion(criterion)
    from moestat.data import read_table

    feats = None if features is None else [f.strip() for f in features.split(",") if f.strip()]
    table = read_table(data, target, feats, labels=classify)
    if classify:
        expert, noise = f"multinomial:{len(table.classes)}", "categorical"
    from moestat.expert_selection import select_experts
    from moestat.fit import FitOptions
    from moestat.table_fit import build_model, fit_table, underdetermined_message

    models = [build_model(k, table.X.shape[1], gate=gate, expert=expert, noise=noise,
                          estimator=estimator, kind=kind, finish=finish) for k in ks]
    if dendrogram is not None:  # (a DIC choice is checked by select_experts, before fitting)
        from moestat.dendrogram import check_dendrogram_model

        check_dendrogram_model(models[-1])
    for model in models:
        n_params = model.n_free_parameters()
        if len(table.y) < n_params:  # a whole table too small to say anything
            raise InputError(underdetermined_message(len(table.y), n_params, model))
    options = {"estimator": estimator, "n_init": n_init,
               "options": FitOptions(max_iter=max_iter, tol=tol, finish=finish), "seed": seed}
    selection = None
    if len(models) == 1:
        fitted = fit_table(models[0], table.X, table.y, with_standard_errors=True, **options)
    else:
        fitted, selection = select_experts(models, table.X, table.y, criterion=criterion,
                                           **options)
    out = {"data": str(data), "target": table.target, "features": list(table.features),
           **fitted.summary(len(table.y), estimator, table.features, table.target),
           "seed": seed}
    if classify:
        out["classes"] = list(table.classes)
    if bootstrap:
        se, used = fitted.bootstrap_standard_errors(bootstrap, seed)
        out["bootstrap"] = {"samples": bootstrap, "used": used,
                            "standard_errors": {k: np.asarray(v).tolist() for k, v in se.items()}}
    if selection is not None:
        out["selection"] = selection
        tree = selection["dendrogram"]
    elif dendrogram is not None:
        from moestat.expert_selection import fit_dendrogram

        tree = out["dendrogram"] = fit_dendrogram(fitted)
    if save is not None:
        write_text_atomic(save, strict_json(out, indent=2) + "\n")
    if plot is not None:
        from moestat.fit_plot import plot_fit

        plot_fit(plot, fitted.model, fitted.params, table.X, table.y, table.features,
                 table.target)
    if dendrogram is not None:
        from moestat.fit_plot import plot_dendrogram

        plot_dendrogram(dendrogram, tree, f"{data.name}: {table.target} on "
                                          f"{', '.join(table.features)}")
    return out
