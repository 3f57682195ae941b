"""Choosing the number of experts: fit k = 1, 2, ... and compare BIC, ICL and AIC, and read
the dendrogram of mixing measures of the largest fit (its DIC; moestat/dendrogram.py).

BIC = -2 log L + P log n, AIC = -2 log L + 2 P, ICL = BIC + 2 sum_t entropy(tau_t) (Biernacki,
Celeux and Govaert 2000), P the free parameters; the smallest value is preferred. DIC chooses
among the dendrogram's levels whose k was fitted, and the fit with that k is kept. The argument
checks import nothing heavy, so `moestat fit` refuses a bad --experts or --criterion before
JAX is imported.
"""

from __future__ import annotations

import functools

import numpy as np

from moestat.errors import InputError


@functools.lru_cache(maxsize=32)
def _entropy_program(model):
    import jax

    from moestat.compiling import jit

    def entropy(params, X, y, weights):
        """sum_t w_t (-sum_i tau_ti log tau_ti), tau the posterior responsibilities."""
        log_tau = jax.nn.log_softmax(model.log_joint(params, X, y), axis=-1)
        return jax.numpy.sum(weights * -jax.numpy.sum(jax.numpy.exp(log_tau) * log_tau, -1))

    return jit(entropy)


def criteria(fit, n_samples: int) -> dict:
    """{"k", "loglik", "bic", "icl", "aic", "n_parameters"} (lower is better): BIC = -2 log L +
    P log n, AIC = -2 log L + 2 P, ICL = BIC + 2 sum_t entropy(tau_t) (Biernacki, Celeux and
    Govaert 2000; None for a regression model, which has no responsibilities)."""
    p = fit.model.n_free_parameters()
    bic = -2 * fit.loglik + p * np.log(n_samples)
    icl = None
    if fit.model.kind != "regression":  # mixtures and classifiers have responsibilities
        icl = bic + 2 * float(_entropy_program(fit.model)(fit.result.params, *fit.data))
    return {"k": fit.model.n_experts, "loglik": fit.loglik, "bic": bic, "icl": icl,
            "aic": -2 * fit.loglik + 2 * p, "n_parameters": p}


SELECTION_CRITERIA = ("bic", "icl", "aic", "dic")


def check_criterion(criterion: str) -> None:
    if criterion not in SELECTION_CRITERIA:
        raise InputError(f"criterion must be one of {', '.join(SELECTION_CRITERIA)}, got "
                         f"{criterion!r}")


def select_experts(models: list, X, y, sample_weight=None, *, criterion: str = "bic",
                   **fit_options) -> tuple:
    """Fit each model (one per number of experts; `table_fit.fit_table`) and keep the one the
    criterion prefers; returns (that TableFit, `choose_experts`'s selection)."""
    from moestat.table_fit import fit_table

    check_criterion(criterion)
    if criterion == "dic":
        from moestat.dendrogram import check_dendrogram_model

        check_dendrogram_model(models[-1])
    fits = [fit_table(m, X, y, sample_weight, **fit_options) for m in models]
    best, selection = choose_experts(fits, int(np.shape(y)[0]), criterion)
    return fits[best], selection


def fit_dendrogram(fit) -> dict | None:
    """The dendrogram of a TableFit (mean log-likelihoods on the user's scale; "from_k" its
    number of experts), or None for a model it is not defined for."""
    from moestat.dendrogram import dendrogram, dendrogram_defined

    if not dendrogram_defined(fit.model):
        return None
    tree = dendrogram(fit.model, fit.result.params, *fit.data,
                      loglik_shift=-float(np.log(fit.scaling.y_scale)))
    return {**tree, "from_k": fit.model.n_experts}


def selection_evidence(fits: list, n_samples: int) -> dict:
    """{"table": [criteria rows], "dendrogram": that of the largest fit or None} for fits
    ordered by k: what every criterion chooses from (`pick`)."""
    return {"table": [criteria(f, n_samples) for f in fits],
            "dendrogram": fit_dendrogram(fits[-1])}


def pick(evidence: dict, criterion: str) -> int:
    """Index of the fit `criterion` prefers: the smallest BIC / ICL / AIC, or for "dic" the
    dendrogram level of least DIC among the fitted ks."""
    table = evidence["table"]
    if criterion != "dic":
        return choose(table, criterion)
    ks = [row["k"] for row in table]
    levels = [r for r in evidence["dendrogram"]["levels"] if r["k"] in ks]
    return ks.index(min(levels, key=lambda r: r["dic"])["k"])


def choose_experts(fits: list, n_samples: int, criterion: str) -> tuple[int, dict]:
    """(index of the kept fit, {"criterion", "table": [criteria rows], "selected_k",
    "dendrogram": {"levels", "selected_k", "omega", "linkage", "weights", "from_k"} or None})
    for fits ordered by k."""
    evidence = selection_evidence(fits, n_samples)
    best = pick(evidence, criterion)
    return best, {"criterion": criterion, **evidence,
                  "selected_k": evidence["table"][best]["k"]}


def choose(table: list[dict], criterion: str) -> int:
    """Index of the row of `criteria` rows that `criterion` (bic, icl, aic) prefers (the
    smallest value)."""
    if criterion == "icl" and any(row["icl"] is None for row in table):
        raise InputError("criterion 'icl' needs a mixture model (regression models have no "
                         "responsibilities)")
    return int(np.argmin([row[criterion] for row in table]))


def parse_experts(text: str) -> list[int]:
    """"3" -> [3]; "1..6" -> [1, 2, ..., 6] (a range of numbers of experts, each >= 1)."""
    lo, sep, hi = str(text).strip().partition("..")
    try:
        ks = [int(lo)] if not sep else list(range(int(lo), int(hi) + 1))
        first, last = int(lo), int(hi) if sep else int(lo)
    except ValueError:
        raise InputError(f"--experts must be a number or a range such as 1..6, got "
                         f"{text!r}") from None
    if first < 1:
        raise InputError(f"--experts must be >= 1, got {text!r}")
    if sep and last <= first:
        raise InputError(f"--experts range {text!r} must increase (e.g. 1..6)")
    return ks
