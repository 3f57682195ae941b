"""Scalar activation functions used by ridge experts and activation gates.

Each maps an array elementwise; all are smooth except `relu` (kink at 0) and `identity`
(linear). `gelu` is the exact (erf) form.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

ACTIVATIONS = {
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "gelu": lambda z: jax.nn.gelu(z, approximate=False),
    "identity": lambda z: z,
}


def get_activation(name: str):
    """Return the activation called `name` (one of `ACTIVATIONS`)."""
    from moestat.errors import InputError

    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise InputError(
            f"unknown activation {name!r}; expected one of {', '.join(ACTIVATIONS)}"
        ) from None
