"""Choosing the number of experts: fit k = 1, 2, ... and compare BIC, ICL and AIC.

BIC = -2 log L + P log n, AIC = -2 log L + 2 P, ICL = BIC + 2 sum_t entropy(tau_t) (Biernacki,
Celeux and Govaert 2000), P the free parameters; the smallest value is preferred. The argument
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
    if fit.model.kind == "mixture":
        icl = bic + 2 * float(_entropy_program(fit.model)(fit.result.params, *fit.data))
    return {"k": fit.model.n_experts, "loglik": fit.loglik, "bic": bic, "icl": icl,
            "aic": -2 * fit.loglik + 2 * p, "n_parameters": p}


SELECTION_CRITERIA = ("bic", "icl", "aic")


def check_criterion(criterion: str) -> None:
    if criterion not in SELECTION_CRITERIA:
        raise InputError(f"criterion must be one of {', '.join(SELECTION_CRITERIA)}, got "
                         f"{criterion!r}")


def select_experts(models: list, X, y, sample_weight=None, *, criterion: str = "bic",
                   **fit_options) -> tuple:
    """Fit each model (one per number of experts; `table_fit.fit_table`) and keep the one the
    criterion prefers; returns (that TableFit, {"criterion", "table": [criteria rows],
    "selected_k"})."""
    from moestat.table_fit import fit_table

    check_criterion(criterion)
    fits = [fit_table(m, X, y, sample_weight, **fit_options) for m in models]
    n = int(np.shape(y)[0])
    table = [criteria(f, n) for f in fits]
    best = choose(table, criterion)
    return fits[best], {"criterion": criterion, "table": table,
                        "selected_k": table[best]["k"]}


def choose(table: list[dict], criterion: str) -> int:
    """Index of the row of `criteria` rows that `criterion` prefers (the smallest value)."""
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
