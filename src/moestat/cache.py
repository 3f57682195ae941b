"""Persistent XLA compilation cache for command-line runs and sweep workers.

A sweep compiles one fit per (setting, padded size); re-running, resuming or re-plotting a
study, and every worker process of a pool or Dask cluster, would compile the same programs
again. JAX's persistent cache keeps compiled executables on disk, keyed by the program, the
JAX/XLA version and the device, so a hit is exactly the program a fresh compile would produce.

Directory: $MOESTAT_CACHE_DIR, default ~/.cache/moestat/xla; MOESTAT_CACHE_DIR="" disables it.
Only the CLI and the pool / Dask worker processes turn it on; importing moestat as a library,
or running a sweep in-process through the library, changes nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

from moestat.jax_options import set_option

MIN_COMPILE_SECONDS = 0.3  # cache only programs that are slow to compile


_ACTIVE: str | None = None  # the directory once enabled in this process


def active_directory() -> str | None:
    """The cache directory when this process turned the cache on, else None."""
    return _ACTIVE


def enable_compilation_cache() -> str | None:
    """Turn the cache on (idempotent); returns its directory, or None when disabled."""
    where = os.environ.get("MOESTAT_CACHE_DIR")
    if where is None:
        where = str(Path.home() / ".cache" / "moestat" / "xla")
    if not where:
        return None
    global _ACTIVE
    _ACTIVE = where
    set_option("jax_compilation_cache_dir", where)
    set_option("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    set_option("jax_persistent_cache_min_entry_size_bytes", 0)
    return where
