"""The errors a rate study would see if its grid were in the asymptotic regime, to set beside the
errors it saw.

For an exact fit (as many atoms as the truth, a regular model), theta_hat ~ N(theta*, I^-1 / n)
in the free coordinates (`MixtureOfExperts.to_free`), I the per-sample Fisher information at
the truth. Each metric's median over DRAWS such draws is its asymptotic median error at n —
whatever the metric's definition (Voronoi loss, block error, density distance), because the
run's own metric function measures the draws. I is the mean outer product of the per-sample
scores at the truth over N_INFO points simulated from it (the setting's data stream, replicate
0): positive semi-definite by construction. An observed median far above the asymptotic one
at the largest n means the grid is pre-asymptotic there (a slope fitted on it measures the
approach, not the rate); far below it at small n, that the errors are held by something the
normal law ignores (a bound, the likelihood's shape away from the truth).

Directions the likelihood does not see (eigenvalues of I below NULL times the largest: a
redundant coordinate, a scale gauge) are held at the truth and counted (`null_directions`): a
metric that measures along one (a temperature gate's raw tau) is predicted without that part.
Over-specified settings (more atoms than the truth) and a frozen expert have no such law: None.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from moestat.errors import InputError
from moestat.experiments.config import ExperimentConfig, NDependent, Setting
from moestat.experiments.grid import replicate_keys
from moestat.experiments.metric_runs import metric_runs
from moestat.experiments.metrics import COUNTS, metric_evaluator, reference_params
from moestat.experiments.settings import SettingModels, build
from moestat.experiments.simulation import eval_points, simulate
from moestat.experiments.store import read_rows

N_INFO = 100_000  # simulated points behind the Fisher information
DRAWS = 400  # normal draws per n (the median's sampling error ~ 1.25 / sqrt(DRAWS) relative)
CHUNK = 10  # draws measured at once (a sweep cell's replicates)
NULL = 1e-9  # an eigenvalue of I below NULL * the largest: a direction the likelihood misses


def information(models: SettingModels, n: int, seed: int, n_info: int = N_INFO
                ) -> tuple[np.ndarray, object] | None:
    """(per-sample Fisher information (p, p) in the free coordinates at the truth of sample
    size n, (the truth's free coordinates, their unravel)) — None when the setting is not an
    exact fit."""
    setting = models.setting
    m, tm = models.fit_model, models.truth_model
    if m.frozen is not None or m.n_components != tm.n_components or m.gate != tm.gate:
        return None
    truth = models.truth(n)
    keys = replicate_keys(seed, setting.data_stream, n_info, [0])
    X, y, _, _ = simulate(models, keys, truth, n_info)
    theta, unravel = ravel_pytree(m.to_free(truth))

    def loglik(t, x, yy):
        return m.log_prob(m.from_free(unravel(t)), x[None], yy[None])[0]

    @jax.jit
    def outer(t, X, y):
        scores = jax.vmap(jax.grad(loglik), in_axes=(None, 0, 0))(t, X, y)
        return scores.T @ scores

    return np.asarray(outer(theta, X[0], y[0])) / n_info, (np.asarray(theta), unravel)


def asymptotic_medians(config: ExperimentConfig, setting: Setting, ns, draws: int = DRAWS,
                       n_info: int = N_INFO) -> dict | None:
    """{metric: [asymptotic median error at each n of ns]} for the setting's parameter
    metrics and density / regression errors, from `draws` normal draws and the information of
    `n_info` simulated points, and "null_directions" (None: not an exact fit)."""
    moves = any(isinstance(v, NDependent) for v in setting.truth.values())
    models = build(setting)
    names = tuple(x for x in config.metrics_for(setting.name) if x not in COUNTS)
    fn = metric_evaluator(setting.model_dump_json(), names)  # the sweep's own, compiled once
    key = jax.random.PRNGKey(config.seed)
    points = eval_points(config.seed, setting)  # the run's held-out x
    out = {x: [] for x in names}
    z = chol = theta = unravel = null = None
    for n in ns:
        if chol is None or moves:
            got = information(models, int(n) if moves else int(ns[-1]), config.seed, n_info)
            if got is None:
                return None
            info, (theta, unravel) = got
            chol, null = _root_of_inverse(info)
            z = np.asarray(jax.random.normal(key, (draws, chol.shape[1])))
        thetas = jnp.asarray(theta + z @ chol.T / np.sqrt(float(n)))
        params = jax.vmap(_from_free(models.fit_model, unravel))(thetas)
        truth = models.truth(int(n))
        reference = reference_params(setting, truth, int(n))
        chunks = [jax.device_get(fn(jax.tree_util.tree_map(lambda a, i=i: a[i:i + CHUNK],
                                                           params), reference, truth, points))
                  for i in range(0, draws, CHUNK)]  # a cell's memory: CHUNK fits at a time
        for x in names:
            out[x].append(float(np.median(np.concatenate([c[x] for c in chunks]))))
    out["null_directions"] = null
    return out


def _root_of_inverse(info: np.ndarray) -> tuple[np.ndarray, int]:
    """(L with L L^T = I^+, the inverse on the directions the likelihood sees; the number of
    null directions, held at the truth: a redundant coordinate such as the antisymmetric part
    of a quadratic score, the unused variances of a regression model, a scale gauge)."""
    lam, V = np.linalg.eigh(info)
    keep = lam > NULL * lam.max()
    return V[:, keep] / np.sqrt(lam[keep]), int((~keep).sum())


def _from_free(model, unravel):
    return lambda t: model.from_free(unravel(t))


def asymptotic_report(out: Path) -> dict:
    """`moestat report DIR --asymptotic`: for every exact-fit setting of a run and each of its
    metrics, the asymptotic median error (normal law at the truth) and the run's median error
    at the smallest and largest n, and observed / asymptotic at each."""
    from moestat.experiments.config import holds_classification
    from moestat.experiments.runner import expected_keys, load_resolved

    if holds_classification(out):
        raise InputError(f"{out} is a classification study: --asymptotic applies to rate "
                         f"studies")
    config = load_resolved(out)
    table = read_rows(out, expected_keys(out, config))
    if table is None:
        raise InputError(f"{out} has no finished cells")
    cols = table.to_pydict()
    rows = []
    for s in config.settings:
        runs = {x: metric_runs(cols, config, s.name, x) for x in config.metrics_for(s.name)
                if x not in COUNTS}
        done = [r.ns[r.finite_rows()] for r in runs.values()]
        if not runs or min(d.size for d in done) < 2:
            continue
        ns = np.asarray([done[0][0], done[0][-1]])
        law = asymptotic_medians(config, s, ns)
        if law is None:
            continue
        for x, r in runs.items():
            got = [r.final_median(n) for n in ns]
            rows.append({"setting": s.name, "metric": x, "n": [int(v) for v in ns],
                         "asymptotic_median": law[x], "observed_median": got,
                         "ratio": [g / a if a > 0 else None
                                   for g, a in zip(got, law[x], strict=True)],
                         "null_directions": law["null_directions"]})
    return {"experiment": config.name, "draws": DRAWS, "n_info": N_INFO, "rows": rows}
