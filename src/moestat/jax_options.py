"""JAX options set before or after JAX is imported.

JAX reads each option's environment variable (JAX_ENABLE_X64, JAX_PLATFORMS, ...) once, when
it is imported. `set_option` therefore writes the variable while JAX is not yet imported and
calls `jax.config.update` once it is, so that moestat can state its options (float64, the
compilation cache, the device) without importing JAX: a command that refuses bad input
answers before the ~1 s JAX import. Worker processes inherit the variables.
"""

from __future__ import annotations

import os
import sys


def set_option(name: str, value: bool | int | float | str) -> None:
    """Set the JAX option `name` (e.g. "jax_enable_x64") now or for JAX's import."""
    if "jax" in sys.modules:
        sys.modules["jax"].config.update(name, value)
    else:
        os.environ[name.upper()] = str(value).lower() if isinstance(value, bool) else str(value)
