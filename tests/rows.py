"""Shared assertion: two cells' rows are the same fits."""

from __future__ import annotations

import numpy as np


def assert_same_rows(a: dict[str, list], b: dict[str, list]) -> None:
    """Rows (column -> list) of the same replicates, fit_seconds aside: counts, flags and
    labels exactly, floats to rounding (rtol 1e-9: XLA may sum in another order for another
    batch width or padded length, ~1e-13 relative measured)."""
    a = {k: v for k, v in a.items() if k != "fit_seconds"}
    b = {k: v for k, v in b.items() if k != "fit_seconds"}
    assert a.keys() == b.keys()
    for k, v in b.items():
        if isinstance(v[0], float):
            np.testing.assert_allclose(a[k], v, rtol=1e-9, atol=1e-12, err_msg=k)
        else:
            assert a[k] == v, k
