"""Random truths of the gating papers' d = 32 recipe (arXiv 2405.13997, 2405.14131).

The papers draw their true parameters at random and print neither the draw nor a seed; a
config ships one draw, as numbers, in a `[truths.NAME]` table. `gating_truth(seed, ...)`
regenerates it (tests/test_recipes.py checks every shipped table against it):

    k* experts phi(a_i^T x + b_i):  a_i ~ N(0, I / d),  b_i ~ N(0, 1 / d);
    gate rows i < gated:  beta1_i ~ N(0, gate_var / d I),  beta0_i ~ N(0, gate_var / d);
    gate rows i >= gated: beta1_i = 0 and beta0_i = 0 (the last one is the softmax gauge).

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
