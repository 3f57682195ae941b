"""Truths the engine tests share, as TOML setting fragments."""

TWO_EXPERTS = """n_experts = 2
n_features = 1
x = { dist = "uniform", low = 0.0, high = 1.0 }
[settings.truth]
"gate.beta1" = [[6.0], [0.0]]
"gate.beta0" = [-3.0, 0.0]
"expert.a" = [[-3.0], [3.0]]
"expert.b" = [2.0, -1.0]
"noise.var" = [0.05, 0.08]
"""  # a softmax-gated k* = 2 truth on [0, 1]
