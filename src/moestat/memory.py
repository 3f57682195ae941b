"""Memory: the budget one cell may use and what one replicate's fit needs (JAX-free, so that
the command line refuses an oversized config before importing JAX).

`rows_bytes(n, d, k)` is the part of a fit's memory that the config alone fixes: the data
(n, d + 1) and about 8 arrays of (n, k) (responsibilities, log weights, log joint, ...).
`fit.bytes_per_fit` adds what the model's parametrisation adds (the gate Hessian's product,
a least-squares Jacobian, EM's data statistics), so a config refused here would be refused
there too.
"""

from __future__ import annotations

import os

from moestat.errors import InputError

ENV = "MOESTAT_MEMORY_GB"


def budget() -> float:
    """Bytes one cell may use: $MOESTAT_MEMORY_GB, else a quarter of the physical memory."""
    gb = os.environ.get(ENV)
    if gb:
        try:
            value = float(gb)
        except ValueError:
            raise InputError(f"{ENV} must be a number, got {gb!r}") from None
        if not value > 0:
            raise InputError(f"{ENV} must be > 0, got {gb!r}")
        return value * 2**30
    return 0.25 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def rows_bytes(n: int, d: int, k: int) -> int:
    """float64 bytes of the data (n, d + 1) and 8 arrays of (n, k), plus one (n,) column."""
    return 8 * n * (d + 2 + 8 * k)


def refuse_over_budget(where: str, n: int, need: float, bound: str = "about") -> None:
    """InputError naming the cell (`where`, n) and the size when `need` bytes exceed budget();
    `bound` says what `need` is ("about", or "at least" for rows_bytes)."""
    limit = budget()
    if need > limit:
        raise InputError(f"{where}: one replicate at n = {n} needs {bound} "
                         f"{need / 2**30:.1f} GB, "
                         f"above the memory budget of {limit / 2**30:.1f} GB ({ENV})")


def refuse_oversized_settings(settings, n: int) -> None:
    """The rows of one replicate of each setting (n_features, n_experts) at the largest n."""
    for s in settings:
        refuse_over_budget(f"settings.{s.name}", n, rows_bytes(n, s.n_features, s.n_experts),
                           "at least")
