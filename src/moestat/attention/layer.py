"""Multi-head self-attention with a softmax or a sigmoid gate (arXiv 2502.00281).

For tokens X (n_tokens, width) and head h with projections W_q, W_k, W_v (width, d_head):

    scores   S_h = (X W_q)(X W_k)^T / sqrt(d_head)                       (n_tokens, n_tokens)
    softmax  A_h[i, j] = exp(S_h[i, j]) / sum_{j' unmasked} exp(S_h[i, j'])
    sigmoid  A_h[i, j] = sigmoid(S_h[i, j] + b)   (b = -log(number of unmasked keys) by
                                                  default; a learnable scalar if asked)
    output   concat_h(A_h X W_v) W_o                                      (n_tokens, width)

Masked keys get weight exactly 0 under both gates. Each output row is a mixture of experts
whose gates are quadratic in the flattened input (moe_view.py).
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp

GATES = ("softmax", "sigmoid")


def attention_weights(scores, gate: str, bias=None, key_mask=None):
    """Attention weights from scores (..., n_queries, n_keys).

    key_mask (n_keys,) bool, True = attend (default: all). Softmax: normalised over the
    unmasked keys (a row with no unmasked key gets all zeros). Sigmoid: sigmoid(score + bias),
    bias default -log(number of unmasked keys). Masked keys: exactly 0.
    """
    if gate not in GATES:
        raise ValueError(f"gate must be one of {GATES}, got {gate!r}")
    n_keys = scores.shape[-1]
    mask = jnp.ones(n_keys, bool) if key_mask is None else jnp.asarray(key_mask, bool)
    if gate == "softmax":
        masked = jnp.where(mask, scores, -jnp.inf)
        top = jnp.max(masked, axis=-1, keepdims=True)
        e = jnp.where(mask, jnp.exp(masked - jnp.where(jnp.isfinite(top), top, 0.0)), 0.0)
        total = jnp.sum(e, axis=-1, keepdims=True)
        return jnp.where(total > 0, e / jnp.where(total > 0, total, 1.0), 0.0)
    if bias is None:
        bias = -jnp.log(jnp.maximum(jnp.sum(mask), 1).astype(scores.dtype))
    return jnp.where(mask, jax.nn.sigmoid(scores + bias), 0.0)


class SelfAttention(eqx.Module):
    """Multi-head self-attention; `gate` "softmax" or "sigmoid" (see module docstring).

    wq, wk, wv (n_heads, width, d_head); wo (n_heads * d_head, width); bias: the sigmoid's
    learnable scalar (None: the default -log(number of unmasked keys), not trained).
    """

    wq: jax.Array
    wk: jax.Array
    wv: jax.Array
    wo: jax.Array
    bias: jax.Array | None
    gate: str = eqx.field(static=True)

    def __init__(self, width: int, n_heads: int, gate: str = "softmax", *, key,
                 learnable_bias: bool = False, n_tokens: int | None = None,
                 dtype=jnp.float32):
        if gate not in GATES:
            raise ValueError(f"gate must be one of {GATES}, got {gate!r}")
        if width % n_heads:
            raise ValueError(f"width {width} is not a multiple of n_heads {n_heads}")
        d_head = width // n_heads
        kq, kk, kv, ko = jax.random.split(key, 4)
        scale = 1.0 / math.sqrt(width)
        shape = (n_heads, width, d_head)
        self.wq = scale * jax.random.normal(kq, shape, dtype)
        self.wk = scale * jax.random.normal(kk, shape, dtype)
        self.wv = scale * jax.random.normal(kv, shape, dtype)
        self.wo = jax.random.normal(ko, (width, width), dtype) / math.sqrt(width)
        self.gate = gate
        if learnable_bias:
            if gate != "sigmoid" or n_tokens is None:
                raise ValueError("a learnable bias needs gate='sigmoid' and n_tokens")
            self.bias = jnp.asarray(-math.log(n_tokens), dtype)
        else:
            self.bias = None

    @property
    def d_head(self) -> int:
        return self.wq.shape[-1]

    def weights(self, x, key_mask=None):
        """Attention weights (n_heads, n_tokens, n_tokens) for tokens x (n_tokens, width)."""
        q = jnp.einsum("tw,hwd->htd", x, self.wq)
        k = jnp.einsum("tw,hwd->htd", x, self.wk)
        scores = jnp.einsum("hid,hjd->hij", q, k) / math.sqrt(self.d_head)
        return attention_weights(scores, self.gate, self.bias, key_mask)

    def heads(self, x, key_mask=None):
        """Per-head outputs A_h X W_v, shape (n_heads, n_tokens, d_head)."""
        v = jnp.einsum("tw,hwd->htd", x, self.wv)
        return jnp.einsum("hij,hjd->hid", self.weights(x, key_mask), v)

    def __call__(self, x, key_mask=None):
        """x (n_tokens, width) -> (n_tokens, width)."""
        h = self.heads(x, key_mask)
        return jnp.transpose(h, (1, 0, 2)).reshape(x.shape[0], -1) @ self.wo
