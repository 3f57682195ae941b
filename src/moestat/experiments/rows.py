"""The results-row schema: one row per fit, the same columns whether the fit ran or failed.

    setting, n, replicate, seed                 which fit
    objective, loglik, n_iter                    its outcome (null where not finite)
    converged, at_bound, floored, empty, separated, degenerate   its flags (fit/degeneracy.py)
    failed                                       the cell raised on every attempt: no values
    fit_seconds, version                         wall time per fit, moestat's version
    metric.<name>                                each metric of the setting (null: not defined
                                                 for this fit, e.g. no over-fitted cell)
    start.<name>                                 the metric at the fit's near-truth start (null
                                                 for data-driven starts): the init floor

No NaN or inf reaches a results file: a value that cannot be computed is a Parquet null and
its fit's flags say why.
"""

from __future__ import annotations

import numpy as np

from moestat import __version__
from moestat.experiments.config import ExperimentConfig
from moestat.experiments.grid import Cell

FLAGS = ("converged", "at_bound", "floored", "empty", "separated", "degenerate")  # per fit


def finite_or_none(values) -> list[float | None]:
    """Floats, with None (a Parquet null) where not finite."""
    v = np.asarray(values, float).reshape(-1)
    return [float(x) if np.isfinite(x) else None for x in v]


def fit_rows(config: ExperimentConfig, setting: str, n: int, reps: list[int], result,
             metrics: dict, seconds: float | None,
             start_metrics: dict | None = None) -> dict[str, list]:
    """Rows of fitted replicates `reps`: `result` a FitResult on the host with a leading
    replicate axis, `metrics` {name: (R,)} at the fit and `start_metrics` at its start (None:
    no near-truth start); result None records failed fits (no values)."""
    k = len(reps)
    none = [None] * k
    failed = result is None
    rows = {"setting": [setting] * k, "n": [n] * k, "replicate": list(reps),
            "seed": [config.seed] * k,
            "objective": none if failed else finite_or_none(result.objective),
            "loglik": none if failed else finite_or_none(result.loglik),
            "n_iter": [0] * k if failed else np.asarray(result.n_iter, int).tolist(),
            **{f: [False] * k if failed else np.asarray(getattr(result, f), bool).tolist()
               for f in FLAGS},
            "failed": [failed] * k, "fit_seconds": none if failed else [seconds] * k,
            "version": [__version__] * k}
    for name in config.metrics_for(setting):
        rows[f"metric.{name}"] = none if failed else finite_or_none(metrics[name])
        rows[f"start.{name}"] = (none if failed or start_metrics is None
                                 else finite_or_none(start_metrics[name]))
    return rows


def failed_rows(config: ExperimentConfig, cell: Cell) -> dict[str, list]:
    """Rows of a cell whose every attempt failed: recorded, never lost, never a result."""
    return fit_rows(config, cell.setting, cell.n, cell.replicates, None, {}, None)
