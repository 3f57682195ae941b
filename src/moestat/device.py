"""Where JAX computes: `--device auto|cpu|gpu` (or MOESTAT_DEVICE), applied before the first
computation of the command line and of every pool / Dask worker it starts.

auto: JAX's own choice (a GPU when a CUDA jaxlib and a GPU are present, else the CPU);
cpu:  the CPU even when a GPU is present (jax_platforms = "cpu");
gpu:  the first GPU; refused in one line when JAX sees none.
The numeric code is the same on every device: arrays are created by JAX on the default device
and nothing in moestat names a platform.
"""

from __future__ import annotations

import os

from moestat.errors import InputError
from moestat.jax_options import set_option

CHOICES = ("auto", "cpu", "gpu")
ENV = "MOESTAT_DEVICE"


def select_device(choice: str | None = None) -> str:
    """Apply `choice` (default: $MOESTAT_DEVICE, else auto) and record it in the environment
    for worker processes; returns the choice ("auto" leaves JAX untouched)."""
    choice = choice or os.environ.get(ENV) or "auto"
    if choice not in CHOICES:
        raise InputError(f"--device must be one of {', '.join(CHOICES)}, got {choice!r}")
    os.environ[ENV] = choice
    if choice == "cpu":
        set_option("jax_platforms", "cpu")
    elif choice == "gpu":
        import jax

        try:
            gpus = jax.devices("gpu")
        except RuntimeError:
            gpus = []
        if not gpus:
            raise InputError("--device gpu: JAX sees no GPU (install moestat[cuda] on a machine "
                             "with an NVIDIA GPU and driver, or use --device cpu)")
        jax.config.update("jax_default_device", gpus[0])
    return choice
