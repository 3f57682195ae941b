"""What a sweep process may use: memory per cell and compiled programs kept alive.

* A cell runs its replicates in consecutive blocks that each fit the memory budget
  (`memory.budget`: $MOESTAT_MEMORY_GB, default a quarter of the physical memory), estimated
  per replicate by `fit.bytes_per_fit`. Replicates are independent, so the rows equal a
  one-block run's (counts and flags exactly, floats to rounding).
* Compiled executables are dropped in groups once MAX_LIVE_SHAPES (setting, padded size)
  pairs have been used: a long sweep that kept them all ran out of memory mappings (LLVM
  "Cannot allocate memory", vm.max_map_count) after ~200 cells, and dropping them at every new
  n cost 2.4x (the per-setting samplers and metrics were rebuilt each time). A revisited
  shape is read back from the on-disk compilation cache.
"""

from __future__ import annotations

import jax

from moestat.fit import bytes_per_fit
from moestat.memory import budget
from moestat.model import MixtureOfExperts

MAX_LIVE_SHAPES = 32  # (setting, rows) pairs whose executables a sweep process keeps at once
_LIVE_SHAPES: set = set()
_ON_CLEAR: list = []  # callbacks run when the executables are dropped


def replicate_blocks(reps: list[int], model: MixtureOfExperts, n: int, estimator: str = "em",
                     finish: str = "none") -> list[list[int]]:
    """The cell's replicates in consecutive blocks that each fit in memory.budget()."""
    size = max(1, int(budget() // bytes_per_fit(model, n, estimator, finish)))
    return [reps[i:i + size] for i in range(0, len(reps), size)]


def limit_live_executables(setting_json: str, rows: int) -> None:
    """Note that (setting, rows) is in use; drop every compiled executable first when it is a
    new pair beyond MAX_LIVE_SHAPES (module docstring)."""
    key = (setting_json, rows)
    if key not in _LIVE_SHAPES and len(_LIVE_SHAPES) >= MAX_LIVE_SHAPES:
        jax.clear_caches()
        _LIVE_SHAPES.clear()
        for callback in _ON_CLEAR:
            callback()
    _LIVE_SHAPES.add(key)


def on_clear(callback) -> None:
    """Run `callback()` whenever limit_live_executables drops the executables."""
    _ON_CLEAR.append(callback)
