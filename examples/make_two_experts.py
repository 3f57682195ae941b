"""Regenerate examples/two_experts.csv (the `make demo` data set) from a known truth.

Truth (softmax-gated Gaussian MoE, k = 2, d = 1, x ~ Uniform[0, 1], n = 2000), the template
of experiments.md §4:
    gate.beta1 = [[25], [0]], gate.beta0 = [-8, 0]
    expert.a   = [[-20], [20]], expert.b = [15, -5]
    noise.var  = [0.09, 0.16]
Run: .venv/bin/python examples/make_two_experts.py
"""

from pathlib import Path

import jax
import numpy as np

from moestat import MixtureOfExperts

TRUTH = {"gate.beta1": [[25.0], [0.0]], "gate.beta0": [-8.0, 0.0],
         "expert.a": [[-20.0], [20.0]], "expert.b": [15.0, -5.0], "noise.var": [0.09, 0.16]}

if __name__ == "__main__":
    model = MixtureOfExperts.create("softmax", "linear", "gaussian", n_experts=2, n_features=1)
    truth = model.from_named(TRUTH)
    X = jax.random.uniform(jax.random.PRNGKey(2026), (2000, 1))
    y = model.sample(jax.random.PRNGKey(7), truth, X)
    out = Path(__file__).with_name("two_experts.csv")
    rows = ["x,y"] + [f"{a:.6f},{b:.6f}" for a, b in zip(np.asarray(X[:, 0]), np.asarray(y),
                                                         strict=True)]
    out.write_text("\n".join(rows) + "\n")
    print(f"wrote {out}")
