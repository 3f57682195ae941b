"""Fit programs kept on disk between processes (moestat/exported_programs.py)."""

from __future__ import annotations

import jax
import numpy as np

from moestat import exported_programs
from moestat.fit import fit_random
from moestat.model import MixtureOfExperts


def _fit(cache):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, 256)
    y = np.where(rng.uniform(size=256) < 0.5, 2 * x, -x) + 0.1 * rng.normal(size=256)
    model = MixtureOfExperts.create("softmax", "linear", "gaussian", n_experts=2, n_features=1)
    result, objectives = fit_random(model, x[:, None], y, jax.random.PRNGKey(1), 2, explore=2,
                                    program_cache=cache)
    return float(result.loglik), np.asarray(objectives)


def test_exported_program_gives_the_traced_programs_fit_and_survives_damage(tmp_path):
    """Traced (no cache), exported then called, loaded from disk as a fresh process would, and
    re-exported over a damaged entry: the same fit every time (the same StableHLO compiled
    with the same options; 1e-12 allows for nothing but rounding)."""
    direct = _fit(None)
    exported = _fit(str(tmp_path))
    entries = list((tmp_path / "exported").glob("*" + exported_programs.SUFFIX))
    assert len(entries) == 1
    exported_programs._LOADED.clear()  # as a fresh process: deserialised from disk
    loaded = _fit(str(tmp_path))
    entries[0].write_bytes(b"damaged")
    exported_programs._LOADED.clear()
    rebuilt = _fit(str(tmp_path))
    assert entries[0].read_bytes() != b"damaged"
    for other in (exported, loaded, rebuilt):
        np.testing.assert_allclose(other[0], direct[0], rtol=1e-12)
        np.testing.assert_allclose(other[1], direct[1], rtol=1e-12)
