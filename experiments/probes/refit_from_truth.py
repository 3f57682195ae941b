"""Is one fit of a run the estimate, or a local optimum? Refit its data from the exact truth.

    python experiments/probes/refit_from_truth.py RUN_DIR SETTING N REPLICATE

Regenerates the replicate's data (they depend only on the seed, the setting, n and the
replicate), fits it from the run's own near-truth start and from the exact (split) truth,
`scale` 0, and prints each fit's objective (the mean log-likelihood, or minus the mean squared
error for least squares: larger is better) and its first metric. If the truth-started fit has
the larger objective, the run's fit stopped in a worse local optimum.
"""

from __future__ import annotations

import sys

import jax

from moestat.experiments import sweep
from moestat.experiments.runner import load_resolved
from moestat.fit import fit_batch, near_truth


def main(out: str, setting_name: str, n: int, replicate: int) -> None:
    config = load_resolved(out)
    setting = next((s for s in config.settings if s.name == setting_name), None)
    if setting is None:
        raise SystemExit(f"no setting {setting_name!r} in {out}")
    built = sweep.build(setting)
    truth = built.truth(n)
    keys = sweep.replicate_keys(config.seed, setting.name, n, [replicate])
    X, y, start, init_keys = sweep.simulate(built, keys, truth, n)
    options = sweep.fit_options(setting)
    metric = config.metrics_for(setting.name)[0]
    evaluate = sweep._metric_evaluator(setting.model_dump_json(), (metric,))
    assignment = None if setting.init.assignment is None else tuple(setting.init.assignment)
    exact = jax.vmap(lambda k: near_truth(built.fit_model, truth, k, 0.0, assignment))(init_keys)
    for label, s0 in (("run's start", start), ("exact truth", exact)):
        r = fit_batch(built.fit_model, X, y, s0, estimator=setting.estimator, options=options,
                      split_after=sweep.SPLIT_AFTER)
        m = evaluate(r.params, sweep.reference_params(setting, truth, n), truth,
                     sweep.eval_points(config.seed, setting))[metric]
        print(f"{label:12s} objective {float(r.objective[0]):.9e}  {metric} "
              f"{float(m[0]):.4g}  iterations {int(r.n_iter[0])}  on a bound "
              f"{bool(r.at_bound[0])}")


if __name__ == "__main__":
    if len(sys.argv) != 5:
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
