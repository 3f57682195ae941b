"""A small pre-norm transformer encoder classifier (equinox), softmax or sigmoid attention.

tokens (n_tokens, token_dim) -> linear embedding + learned positions (n_tokens, width) ->
n_layers x [x + Attn(LN(x)), x + MLP(LN(x))] (MLP: width -> 2 width -> width, GELU) ->
mean over tokens -> LN -> linear -> class logits (n_classes,). float32 (documented exception
to moestat's float64: a classifier trained by SGD, not an estimator whose rates are measured).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from moestat.attention.layer import SelfAttention

DTYPE = jnp.float32


class EncoderBlock(eqx.Module):
    ln1: eqx.nn.LayerNorm
    attn: SelfAttention
    ln2: eqx.nn.LayerNorm
    up: eqx.nn.Linear
    down: eqx.nn.Linear

    def __init__(self, width: int, n_heads: int, gate: str, n_tokens: int, *, key,
                 learnable_bias: bool = False):
        ka, ku, kd = jax.random.split(key, 3)
        self.ln1 = eqx.nn.LayerNorm(width, dtype=DTYPE)
        self.attn = SelfAttention(width, n_heads, gate, key=ka, learnable_bias=learnable_bias,
                                  n_tokens=n_tokens, dtype=DTYPE)
        self.ln2 = eqx.nn.LayerNorm(width, dtype=DTYPE)
        self.up = eqx.nn.Linear(width, 2 * width, key=ku, dtype=DTYPE)
        self.down = eqx.nn.Linear(2 * width, width, key=kd, dtype=DTYPE)

    def __call__(self, x, key_mask=None):
        x = x + self.attn(jax.vmap(self.ln1)(x), key_mask)
        h = jax.nn.gelu(jax.vmap(self.up)(jax.vmap(self.ln2)(x)))
        return x + jax.vmap(self.down)(h)


class EncoderClassifier(eqx.Module):
    embed: eqx.nn.Linear
    pos: jax.Array
    blocks: list
    ln: eqx.nn.LayerNorm
    head: eqx.nn.Linear

    def __init__(self, n_tokens: int, token_dim: int, n_classes: int, *, width: int = 32,
                 n_heads: int = 4, n_layers: int = 2, gate: str = "softmax",
                 learnable_bias: bool = False, key):
        ke, kp, kh, *kb = jax.random.split(key, 3 + n_layers)
        self.embed = eqx.nn.Linear(token_dim, width, key=ke, dtype=DTYPE)
        self.pos = 0.02 * jax.random.normal(kp, (n_tokens, width), DTYPE)
        self.blocks = [EncoderBlock(width, n_heads, gate, n_tokens, key=k,
                                    learnable_bias=learnable_bias) for k in kb]
        self.ln = eqx.nn.LayerNorm(width, dtype=DTYPE)
        self.head = eqx.nn.Linear(width, n_classes, key=kh, dtype=DTYPE)

    def __call__(self, tokens, key_mask=None):
        """tokens (n_tokens, token_dim) -> logits (n_classes,)."""
        x = jax.vmap(self.embed)(jnp.asarray(tokens, DTYPE)) + self.pos
        for block in self.blocks:
            x = block(x, key_mask)
        if key_mask is None:
            pooled = jnp.mean(x, axis=0)
        else:
            m = jnp.asarray(key_mask, x.dtype)[:, None]
            pooled = jnp.sum(x * m, axis=0) / jnp.maximum(jnp.sum(m), 1.0)
        return self.head(self.ln(pooled))
