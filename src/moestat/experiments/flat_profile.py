"""Profile of the least-squares objective along a split atom's amplitude direction.

An over-specified least-squares fit splits one true atom (a, b) into copies i and j. With
linear experts h(x) = a x + b (positively homogeneous in (a, b)), copies with the true gate
and coefficients (1 + t)(a, b) and (1 - t)(a, b) give the true regression function for every
t in (-1, 1): t is a flat direction of the population objective, at every n. Ridge experts
sigmoid(a x + b) have no such direction. Whether a slow over-fitted rate belongs to the
estimator or to its start is read off the profile

    P_n(t) = min { MSE_n(G) : (b_i - b_j) / (b_i + b_j) = t, copies i and j share their gate },

(the amplitude coordinate measured on the intercepts; every other parameter free). The copies
share their gate because the weight split is a flat direction of every over-specified model:
with it free, one copy can fade out and leave its parameters — t among them — unconstrained,
for ridge and linear experts alike. The profile is drawn as
n (P_n(t) - min P_n) / sigma^2 — excess residual sum of squares in units of the noise
variance, a chi-square scale. A profile whose excess stays O(1) over a range of t as n grows
cannot localise t: the least-squares estimate itself wanders (the estimator's slowness).
A profile that sharpens like n t^2 localises it, and a fit whose t_hat sits away from the
profile's minimum was stopped by its start, not by the criterion. The truth's own excess
n (MSE_n(G*) - min P_n) / sigma^2 bounds the linear profile from above at every t.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from moestat.errors import InputError
from moestat.experiments.config import ExperimentConfig
from moestat.experiments.grid import replicate_keys
from moestat.experiments.settings import built, truth_at
from moestat.experiments.simulation import simulate
from moestat.fit.api import fit, fit_bounds
from moestat.fit.lse import lse

T_STEPS = np.round(np.linspace(0.0, 0.6, 13), 10)  # t >= 0; P_n(-t) = P_n(t) (copies swap)


def split_copies(setting) -> tuple[int, int]:
    """The first two fitted experts that the start assigns to one true atom."""
    a = setting.init.assignment
    if a is None or setting.estimator != "lse" or setting.kind != "regression":
        raise InputError(f"setting {setting.name!r}: a profile needs a least-squares "
                         "regression setting whose near-truth start splits an atom "
                         "(init.assignment)")
    for atom in a:
        idx = [i for i, v in enumerate(a) if v == atom]
        if len(idx) >= 2:
            return idx[0], idx[1]
    raise InputError(f"setting {setting.name!r}: init.assignment splits no atom")


def amplitude(b, i: int, j: int):
    """t = (b_i - b_j) / (b_i + b_j)."""
    return (b[i] - b[j]) / (b[i] + b[j])


def with_amplitude(params, i: int, j: int, t):
    """params with copy j's gate set to copy i's (equal weights) and b_j to
    b_i (1 - t) / (1 + t), so that amplitude(b, i, j) = t."""
    g, b = params.gate, params.expert.b
    gate = g._replace(**{f: v.at[j].set(v[i]) for f, v in zip(g._fields, g, strict=True)
                         if jnp.ndim(v) >= 1 and jnp.shape(v)[0] == b.shape[0]})
    b = b.at[j].set(b[i] * (1 - t) / (1 + t))
    return params._replace(gate=gate, expert=params.expert._replace(b=b))


@functools.lru_cache(maxsize=8)
def _profile_program(model, options, i: int, j: int):
    """jit(X, y, params, t) -> (the constrained least-squares fit from params at amplitude t,
    its mean squared error)."""

    def solve(X, y, params, t):
        w = jnp.ones_like(y)
        bounds = fit_bounds(model, y, w, options)

        def constrain(p):
            return with_amplitude(p, i, j, t)

        p, *_ = lse(model, X, y, w, constrain(params), bounds, options, constrain=constrain)
        p = constrain(p)
        return p, jnp.mean((y - model.mean(p, X)) ** 2)

    return jax.jit(solve)


def profile(config: ExperimentConfig, setting_name: str, n: int, replicate: int = 0,
            steps=T_STEPS) -> dict:
    """The profile of one replicate of (setting, n) — the data the run fitted — with the
    unconstrained fit from the run's near-truth start: t_start, t_fit, and excesses in units
    of sigma^2 / n ("excess": per t; "fit_excess": the fit's; "truth_excess": the truth's).
    The profile is traced by continuation, t = 0, steps[1], ... each fit started from the
    previous one (the first from the unconstrained fit), and mirrored: P_n(-t) = P_n(t), the
    copies' labels swapped."""
    setting = next((s for s in config.settings if s.name == setting_name), None)
    if setting is None:
        raise InputError(f"no setting {setting_name!r}; settings: "
                         f"{[s.name for s in config.settings]}")
    i, j = split_copies(setting)
    text = setting.model_dump_json()
    models, truth = built(text), truth_at(text, n)
    if "b" not in models.fit_model.zeros().expert._fields:
        raise InputError(f"setting {setting_name!r}: a profile needs experts with an "
                         f"intercept b (got {setting.expert!r})")
    keys = replicate_keys(config.seed, setting.data_stream, n, [replicate])
    X, y, start, _ = simulate(models, keys, truth, n)
    X, y = X[0], y[0]
    start = jax.tree_util.tree_map(lambda a: a[0], start)
    model, options = models.fit_model, models.options
    fitted = fit(model, X, y, start, estimator="lse", options=options).params
    program = _profile_program(model, options, i, j)
    p, half = fitted, []
    for t in steps:
        p, m = program(X, y, p, float(t))
        half.append(float(m))
    ts = np.concatenate([-steps[:0:-1], steps])
    mse = np.array(half[:0:-1] + half)
    fit_mse = float(jnp.mean((y - model.mean(fitted, X)) ** 2))
    truth_mse = float(jnp.mean((y - models.truth_model.mean(truth, X)) ** 2))
    floor = min(mse.min(), fit_mse)
    var = float(np.mean(np.asarray(truth.noise.var)))
    scale = n / var
    excess = (mse - floor) * scale
    at = {f"{u:g}": float(np.mean(excess[np.isclose(np.abs(ts), u)])) for u in (0.1, 0.3)
          if np.isclose(np.abs(ts), u).any()}  # mean of +-u (the copies swap)
    return {"setting": setting_name, "n": int(n), "replicate": int(replicate),
            "t": [float(t) for t in ts], "excess": list(map(float, excess)), "excess_at": at,
            "t_start": float(amplitude(start.expert.b, i, j)),
            "t_fit": float(amplitude(fitted.expert.b, i, j)),
            "fit_excess": float((fit_mse - floor) * scale),
            "truth_excess": float((truth_mse - floor) * scale)}


def profile_ns(config: ExperimentConfig) -> list[int]:
    """The smallest, a middle and the largest n of the run's grid."""
    ns = config.n_values()
    return sorted({ns[0], ns[len(ns) // 2], ns[-1]})


def save_profile_figure(config: ExperimentConfig, settings: list[str], out) -> list[dict]:
    """Profiles of replicate 0 of each setting at profile_ns, in one panel (a colour per
    setting, darker for larger n); returns the profiles."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from moestat.files import save_figure_atomic

    results = [profile(config, s, n) for s in settings for n in profile_ns(config)]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    maps = ["Blues", "Oranges", "Greens", "Purples"]
    for k, s in enumerate(settings):
        rows = [r for r in results if r["setting"] == s]
        cmap = plt.get_cmap(maps[k % len(maps)])
        for m, r in enumerate(rows):
            colour = cmap(0.45 + 0.5 * m / max(len(rows) - 1, 1))
            ax.plot(r["t"], np.maximum(r["excess"], 0.0), "-o", ms=2.5, color=colour,
                    label=f"{s}, n = {r['n']}")
    ax.set_yscale("symlog", linthresh=1.0)
    ax.axhline(1.0, color="0.6", lw=0.8, ls=":")
    ax.set_xlabel("amplitude coordinate t = (b_i - b_j) / (b_i + b_j) of the split atom")
    ax.set_ylabel("profile excess  n (P_n(t) - min P_n) / sigma^2")
    ax.set_title("least-squares profile along the split atom's amplitude", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure_atomic(fig, out)
    plt.close(fig)
    return results


def profile_command(directory, settings: list[str], output=None):
    """`moestat plot DIRECTORY --profile S ...`: DIRECTORY is a run directory (its resolved
    config) or a config (a file or a shipped name), whose data the profile refits. Returns
    (figure path, profiles); the figure defaults to DIRECTORY/profile.png, or ./profile.png
    for a config."""
    from pathlib import Path

    from moestat.experiments.runner import RESOLVED, load_resolved, resolve
    from moestat.shipped import config_path

    run_dir = (Path(directory) / RESOLVED).is_file()
    config = load_resolved(directory) if run_dir else resolve(config_path(directory))
    out = Path(output) if output else (Path(directory) if run_dir else Path(".")) / "profile.png"
    return out, save_profile_figure(config, settings, out)
