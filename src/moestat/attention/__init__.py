"""Softmax vs sigmoid self-attention: the layer, its mixture-of-experts view, a small encoder
classifier and the real-data sample-efficiency experiment (arXiv 2502.00281).

Built on equinox (modules are pytrees, like moestat's parameters: seeds are vmapped through
`eqx.filter_vmap` and one `jax.jit`) and optax; float32 (a trained classifier, not an
estimator whose rates are measured). equinox is an optional dependency (`moestat[attention]`).
"""

from moestat.errors import require

require("equinox", "attention")

from moestat.attention.layer import GATES, SelfAttention, attention_weights  # noqa: E402
from moestat.attention.moe_view import moe_row, moe_view  # noqa: E402
from moestat.attention.transformer import EncoderClassifier  # noqa: E402

__all__ = ["GATES", "EncoderClassifier", "SelfAttention", "attention_weights", "moe_row",
           "moe_view"]
