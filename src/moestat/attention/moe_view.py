"""One row of self-attention is a mixture of experts with quadratic gates (arXiv 2502.00281).

Flatten the tokens X (n_tokens, width) into xbar = vec(X) (n_tokens * width,), row-major, and
let E_j select token j (E_j xbar = x_j). For head h and query row i, key j is an expert:

    gate   s_j(xbar) = xbar^T A_j xbar,  A_j = E_i^T (W_q W_k^T / sqrt(d_head)) E_j
           (softmax over j; or sigmoid(s_j + b), b the layer's bias, -log(n_tokens) by default)
    expert h_j(xbar)[c] = a_jc^T xbar,   a_jc = E_j^T W_v[:, c]          (linear, no intercept)

so output coordinate c of the row, sum_j w_j(xbar) h_j(xbar)[c], is moestat's regression MoE
`MixtureOfExperts(quadratic_softmax | quadratic_sigmoid, linear)` with n_tokens experts in
n_tokens * width features. `moe_view` builds that model and its parameters.
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from moestat.attention.layer import SelfAttention
from moestat.model import MixtureOfExperts, MoEParams

GATE_OF = {"softmax": "quadratic_softmax", "sigmoid": "quadratic_sigmoid"}


def moe_view(layer: SelfAttention, n_tokens: int, head: int, row: int
             ) -> tuple[MixtureOfExperts, list[MoEParams]]:
    """The MoE of (head, row): the model and one parameter set per output coordinate c of the
    head (d_head of them); `model.mean(params[c], xbar[None])` is that coordinate."""
    width, d = layer.wq.shape[1], layer.d_head
    p = n_tokens * width
    B = (layer.wq[head] @ layer.wk[head].T).astype(jnp.float64) / math.sqrt(d)  # (width, width)
    A = jnp.zeros((n_tokens, p, p))
    blk = slice(row * width, (row + 1) * width)
    for j in range(n_tokens):
        A = A.at[j, blk, j * width:(j + 1) * width].set(B)
    if layer.gate == "softmax":
        beta0 = jnp.zeros(n_tokens)
    else:
        b = -math.log(n_tokens) if layer.bias is None else float(layer.bias)
        beta0 = jnp.full(n_tokens, b)
    model = MixtureOfExperts.create(GATE_OF[layer.gate], "linear", n_experts=n_tokens,
                                    n_features=p, kind="regression")
    z = model.zeros()
    gate = z.gate._replace(A=A, beta1=jnp.zeros((n_tokens, p)), beta0=beta0)
    wv = layer.wv[head].astype(jnp.float64)  # (width, d_head)
    params = []
    for c in range(d):
        a = jnp.zeros((n_tokens, p))
        for j in range(n_tokens):
            a = a.at[j, j * width:(j + 1) * width].set(wv[:, c])
        params.append(MoEParams(gate, z.expert._replace(a=a, b=jnp.zeros(n_tokens)),
                                z.noise._replace(var=jnp.asarray(1.0))))
    return model, params


def moe_row(layer: SelfAttention, x, head: int, row: int):
    """The head's output at `row` computed through the MoE view, shape (d_head,)."""
    n_tokens = x.shape[0]
    model, params = moe_view(layer, n_tokens, head, row)
    xbar = jnp.asarray(x, jnp.float64).reshape(1, -1)
    return jnp.stack([model.mean(p, xbar)[0] for p in params])
