"""Random truths of the gating papers' recipes (arXiv 2405.13997, 2405.14131, 2402.03226).

The papers draw their true parameters at random and print neither the draw nor a seed; a
config ships one draw, as numbers, in a `[truths.NAME]` table. `gating_truth(seed, ...)`
regenerates it (tests/test_recipes.py checks every shipped table against it):

    k* experts phi(a_i^T x + b_i):  a_i ~ N(0, I / d),  b_i ~ N(0, 1 / d);
    gate rows i < gated:  beta1_i ~ N(0, gate_var / d I),  beta0_i ~ N(0, gate_var / d);
    gate rows i >= gated: beta1_i = 0 and beta0_i = 0 (the last one is the softmax gauge).

The Laplace gate's (`laplace_truth`, App. I of arXiv 2402.03226 where it is printed):
experts and intercepts as above with every row drawn (beta0 then shifted so the last is 0),
variances nu_i = |N(0, 1 / d)|; the locations W_i ~ Uniform[0, 1]^d are ours (the paper's
N(0, 0.01 / d) puts every W_i at the corner of X's support [0, 1]^d, where -||W_i - x||
is, for d = 1, x-free on most of it); so is the rejection of draws whose locations are
closer than `min_separation` (0.2; nearly equal W_i make the gate x-free). The softmax
truth on the same draw reads W_i - W_k as its slopes.

Numbers are rounded to 6 significant digits (the shipped draw is the rounded one).
"""

from __future__ import annotations

import numpy as np

DIGITS = 6


def gating_truth(seed: int, d: int = 32, k: int = 8, gated: int = 7,
                 gate_var: float = 0.01) -> dict[str, list]:
    """{"gate.beta1" (k, d), "gate.beta0" (k,), "expert.a" (k, d), "expert.b" (k,)} as lists."""
    rng = np.random.default_rng(seed)
    beta1 = np.zeros((k, d))
    beta0 = np.zeros(k)
    beta1[:gated] = rng.normal(0.0, np.sqrt(gate_var / d), (gated, d))
    beta0[:gated] = rng.normal(0.0, np.sqrt(gate_var / d), gated)
    a = rng.normal(0.0, np.sqrt(1.0 / d), (k, d))
    b = rng.normal(0.0, np.sqrt(1.0 / d), k)
    out = {"gate.beta1": beta1, "gate.beta0": beta0, "expert.a": a, "expert.b": b}
    return {name: _round(v).tolist() for name, v in out.items()}


def _round(v: np.ndarray) -> np.ndarray:
    return np.vectorize(lambda x: float(f"{x:.{DIGITS}g}"))(v) if v.size else v


def truth_toml(name: str, truth: dict[str, list]) -> str:
    """The `[truths.NAME]` table of a draw, one row of a matrix per line."""
    lines = [f"[truths.{name}]"]
    for field, v in truth.items():
        if not isinstance(v, list):
            lines.append(f'"{field}" = {v:g}')
        elif v and isinstance(v[0], list):
            rows = ",\n  ".join("[" + ", ".join(f"{x:g}" for x in row) + "]" for row in v)
            lines.append(f'"{field}" = [\n  {rows},\n]')
        else:
            lines.append(f'"{field}" = [' + ", ".join(f"{x:g}" for x in v) + "]")
    return "\n".join(lines) + "\n"


def laplace_truth(seed: int, d: int = 1, k: int = 2, gate_var: float = 0.01,
                  min_separation: float = 0.2) -> dict[str, list]:
    """{"gate.W" (k, d), "gate.beta0" (k,), "expert.a" (k, d), "expert.b" (k,),
    "noise.var" (k,)} as lists (module docstring): the first draw of the stream `seed` whose
    locations are at least `min_separation` apart."""
    rng = np.random.default_rng(seed)
    while True:
        W = rng.uniform(0.0, 1.0, (k, d))
        gaps = np.linalg.norm(W[:, None] - W[None], axis=-1)[np.triu_indices(k, 1)]
        if gaps.min() >= min_separation:
            break
    beta0 = rng.normal(0.0, np.sqrt(gate_var / d), k)
    a = rng.normal(0.0, np.sqrt(1.0 / d), (k, d))
    b = rng.normal(0.0, np.sqrt(1.0 / d), k)
    var = np.abs(rng.normal(0.0, np.sqrt(1.0 / d), k))
    out = {"gate.W": W, "gate.beta0": beta0 - beta0[-1], "expert.a": a, "expert.b": b,
           "noise.var": var}
    return {name: _round(v).tolist() for name, v in out.items()}


def softmax_reading(truth: dict[str, list]) -> dict[str, list]:
    """The softmax truth of a Laplace draw: slopes W_i - W_k, everything else the same."""
    W = np.asarray(truth["gate.W"])
    out = {("gate.beta1" if f == "gate.W" else f): v for f, v in truth.items()}
    out["gate.beta1"] = _round(W - W[-1]).tolist()
    return out
