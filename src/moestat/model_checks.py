"""Simulation checks of the tools for users' data, on data from known models:

coverage_study   how often estimate +- 1.96 SE (moestat/standard_errors.py) covers the truth
                 (coverage_figure draws it against n);
selection_study  how often BIC, ICL, AIC and the dendrogram's DIC pick the true number of
                 experts.

Both fit with `table_fit.fit_table`, as `moestat fit` does; docs/results.md reports them.
"""

from __future__ import annotations

import jax
import numpy as np

from moestat.expert_selection import SELECTION_CRITERIA, pick, selection_evidence
from moestat.model import MixtureOfExperts
from moestat.table_fit import fit_table

COVERAGE_TRUTH = {"gate.beta1": [[2.0], [0.0]], "gate.beta0": [0.5, 0.0],
                  "expert.a": [[2.0], [-1.0]], "expert.b": [1.0, -0.5], "noise.var": [0.1, 0.2]}


def coverage_study(n: int = 1000, replicates: int = 200, seed: int = 0, n_init: int = 5,
                   level_z: float = 1.96) -> dict:
    """How often estimate +- level_z SE covers the truth, per parameter, over `replicates`
    data sets of n rows from COVERAGE_TRUTH (two softmax-gated Gaussian linear experts,
    x ~ U(-1, 1)), each fitted by `table_fit.fit_table`. Labels are matched to the truth by
    the experts (for k = 2 a swap negates the gate row, whose SE is unchanged)."""
    model = MixtureOfExperts.create("softmax", "linear", "gaussian", n_experts=2, n_features=1)
    truth = model.from_named(COVERAGE_TRUTH)
    want = {k: np.asarray(v) for k, v in COVERAGE_TRUTH.items()}
    rng = np.random.default_rng(seed)
    hits = {k: [] for k in want}
    failed = 0
    for r in range(replicates):
        X = rng.uniform(-1, 1, (n, 1))
        y = np.asarray(model.sample(jax.random.PRNGKey(seed * 100_003 + r), truth, X))
        fit = fit_table(model, X, y, n_init=n_init, seed=r)
        if not fit.standard_errors_ok:
            failed += 1
            continue
        est, se = model.named(fit.params), fit.standard_errors
        swap = (np.abs(est["expert.b"][::-1] - want["expert.b"]).sum()
                < np.abs(est["expert.b"] - want["expert.b"]).sum())
        for k in want:
            e, s = est[k], se[k]
            if swap:
                e, s = (e[::-1], s[::-1]) if not k.startswith("gate") else (-e, s)
            free = s > 0  # the gauge row's SE is 0: not a parameter
            hits[k].append((np.abs(e - want[k]) <= level_z * s)[free])
    per = {k: float(np.mean(np.concatenate(v))) for k, v in hits.items() if v}
    pooled = float(np.mean(np.concatenate([np.concatenate(v) for v in hits.values() if v])))
    return {"n": n, "replicates": replicates, "singular": failed, "pooled": pooled,
            "per_parameter": per}



def coverage_figure(rows: list[dict], path) -> None:
    """Coverage of each parameter's 95 % interval against n (one `coverage_study` row per n),
    with the nominal 95 % and the 90-98 % band the check accepts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from moestat.files import write_atomic

    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    ns = [r["n"] for r in rows]
    ax.axhspan(90, 98, color="0.9", label="accepted: 90-98 %")
    ax.axhline(95, color="0.4", lw=0.8, ls="--", label="nominal 95 %")
    for name in rows[0]["per_parameter"]:
        ax.plot(ns, [100 * r["per_parameter"][name] for r in rows], "o-", ms=4, label=name)
    ax.plot(ns, [100 * r["pooled"] for r in rows], "s-", color="k", lw=2, label="pooled")
    ax.set_xscale("log")
    ax.set_xticks(ns, [str(n) for n in ns])
    ax.minorticks_off()
    ax.set_xlabel("n")
    ax.set_ylabel("coverage of estimate +- 1.96 SE (%)")
    ax.set_title(f"observed-information intervals, {rows[0]['replicates']} data sets per n",
                 fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    plt.close(fig)


def lines_truth(k: int) -> dict:
    """k Gaussian linear experts, each dominating a stretch of x in [-1, 1] (gate slopes
    spread over [-4, 4]), slopes spread over [-3, 3], noise sd 0.3."""
    spread = np.linspace(-1, 1, k) if k > 1 else np.zeros(1)
    beta1 = 4 * spread - 4 * spread[-1]
    return {"gate.beta1": beta1[:, None], "gate.beta0": np.zeros(k),
            "expert.a": 3 * spread[::-1, None], "expert.b": np.resize([0.0, 1.0, -1.0, 0.5], k),
            "noise.var": np.full(k, 0.09)}


def selection_study(k_true=(2, 3, 4), ns=(200, 1000, 5000), replicates: int = 20,
                    k_max: int = 6, seed: int = 0, n_init: int = 5) -> list[dict]:
    """Per (k*, n): the share of `replicates` data sets on which each criterion over
    k = 1..k_max selects k* (DIC: the dendrogram of the k_max fit), and the selected k's."""
    rows = []
    for kt in k_true:
        truth_model = MixtureOfExperts.create("softmax", "linear", "gaussian", n_experts=kt,
                                              n_features=1)
        truth = truth_model.from_named(lines_truth(kt))
        models = [MixtureOfExperts.create("softmax", "linear", "gaussian", n_experts=k,
                                          n_features=1) for k in range(1, k_max + 1)]
        for n in ns:
            rng = np.random.default_rng([seed, kt, n])
            picked = {c: [] for c in SELECTION_CRITERIA}
            for r in range(replicates):
                X = rng.uniform(-1, 1, (n, 1))
                key = jax.random.PRNGKey(int(rng.integers(2**31)))
                y = np.asarray(truth_model.sample(key, truth, X))
                fits = [fit_table(m, X, y, n_init=n_init, seed=r) for m in models]
                evidence = selection_evidence(fits, n)  # one table, one dendrogram
                for c in picked:
                    picked[c].append(int(evidence["table"][pick(evidence, c)]["k"]))
            rows.append({"k_true": kt, "n": n, "replicates": replicates,
                         **{f"{c}_correct": float(np.mean(np.array(v) == kt))
                            for c, v in picked.items()},
                         "picked": picked})
    return rows
