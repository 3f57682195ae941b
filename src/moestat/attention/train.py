"""Training several seeds of the encoder classifier at once (one jitted program per data size).

Per seed s: an encoder initialised from PRNGKey(seed), AdamW (warm-up then cosine decay of the
learning rate), `steps` minibatches of `batch` examples drawn with replacement from that
seed's training subset; cross-entropy loss. Seeds are vmapped: models and optimiser states
carry a leading seed axis, so 5 seeds cost about one program run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from moestat.attention.transformer import DTYPE, EncoderClassifier


@dataclass(frozen=True)
class TrainSettings:
    steps: int = 1500
    batch: int = 64
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    warmup: int = 100


def _optimizer(t: TrainSettings):
    warmup = min(t.warmup, t.steps // 2)  # a short run still decays (and optax needs
    # a cosine phase of at least one step)
    lr = optax.warmup_cosine_decay_schedule(0.0, t.learning_rate, warmup, max(t.steps, 1))
    return optax.adamw(lr, weight_decay=t.weight_decay)


def train_and_test(make_model, X_train, y_train, X_test, y_test, seeds, t: TrainSettings):
    """Train one model per seed and test it.

    make_model(key) -> EncoderClassifier; X_train (S, m, n_tokens, token_dim) and y_train
    (S, m) int: seed s's training subset; X_test (n_test, n_tokens, token_dim), y_test
    (n_test,). Returns (accuracy (S,), seconds for the S trainings incl. compilation,
    final training loss (S,)).
    """
    keys = jnp.stack([jax.random.PRNGKey(int(s)) for s in seeds])
    init_keys, batch_keys = keys, jax.vmap(lambda k: jax.random.fold_in(k, 1))(keys)
    models = eqx.filter_vmap(make_model)(init_keys)
    params, static = eqx.partition(models, eqx.is_array)
    opt = _optimizer(t)

    def loss_fn(p, xb, yb):
        model = eqx.combine(p, static)
        logits = jax.vmap(model)(xb)
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, yb))

    def train_one(p, X, y, key):
        state = opt.init(p)
        m = X.shape[0]

        def step(carry, k):
            p, state = carry
            idx = jax.random.randint(k, (t.batch,), 0, m)
            loss, g = jax.value_and_grad(loss_fn)(p, X[idx], y[idx])
            updates, state = opt.update(g, state, p)
            return (optax.apply_updates(p, updates), state), loss

        (p, _), losses = jax.lax.scan(step, (p, state), jax.random.split(key, t.steps))
        return p, losses[-50:].mean()

    def train_and_score(p, X, y, key, X_test, y_test):
        p, loss = train_one(p, X, y, key)
        pred = jnp.argmax(jax.vmap(eqx.combine(p, static))(X_test), axis=1)
        return jnp.mean(pred == y_test), loss

    # `static` (the structure) is shared by every seed: vmap over the array leaves only
    run = jax.jit(jax.vmap(train_and_score, in_axes=(0, 0, 0, 0, None, None)))
    t0 = time.perf_counter()
    acc, loss = jax.block_until_ready(run(params, jnp.asarray(X_train, DTYPE),
                                          jnp.asarray(y_train), batch_keys,
                                          jnp.asarray(X_test, DTYPE), jnp.asarray(y_test)))
    return np.asarray(acc, float), time.perf_counter() - t0, np.asarray(loss, float)


def make_classifier(n_tokens: int, token_dim: int, n_classes: int, gate: str, width: int,
                    n_heads: int, n_layers: int, learnable_bias: bool = False):
    """A `make_model(key)` for train_and_test."""
    def make(key):
        return EncoderClassifier(n_tokens, token_dim, n_classes, width=width, n_heads=n_heads,
                                 n_layers=n_layers, gate=gate, learnable_bias=learnable_bias,
                                 key=key)
    return make
