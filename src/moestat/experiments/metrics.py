"""What a sweep measures on each fit: Voronoi losses, per-parameter errors, the prompt errors
of contaminated models, and the density / regression errors (moestat.losses), by metric name.

Which metrics a setting offers follows from its parts: the names are the keys the loss
functions return for the setting's model (`available_metrics`), plus `<metric>_scaled` for
scale-invariant gates (evaluated after moving the fit to the truth's scale).
"""

from __future__ import annotations

import functools
import zlib

import jax

from moestat import losses as L
from moestat.compiling import jit
from moestat.errors import InputError
from moestat.experiments.config import ExperimentConfig, NDependent, Setting
from moestat.experiments.settings import SettingModels, build
from moestat.experiments.simulation import draw_x
from moestat.fit import FitOptions, fit, near_truth
from moestat.model import MoEParams

VORONOI = {"D1": L.d1, "D2": L.d2, "D_LSE": L.d_lse}  # and D_r<r> for any r > 0
CELL_L2 = ("cell_l2", "cell_l2@singleton", "cell_l2@overfitted")  # compared with the truth
COUNTS = ("split_cells",)  # per-fit counts: reported per n, not fitted as rates
FUNCTION_ERRORS = ("hellinger", "l2", *CELL_L2, *COUNTS)


def _keys(fn, model) -> list[str]:
    """The names a loss function returns for `model` (traced on zeros, nothing computed)."""
    z = model.zeros()
    return list(jax.eval_shape(lambda: fn(model, z, z)))


def available_metrics(models: SettingModels) -> list[str]:
    """Every metric name defined for the setting's model."""
    m = models.fit_model
    if m.frozen is not None:
        names = _keys(L.prompt_errors, m)
    else:
        names = [*VORONOI, "D_r1", "D_r2", "D_r3", "D_r4"]
        names += [x for x in _keys(L.parameter_errors, m) if x != "empty_cells"]
        if m.gate.scale_invariant:
            names += [x.replace("@", L.SCALED + "@") if "@" in x else x + L.SCALED
                      for x in names if x.startswith(("D", "beta1"))]
    if m.frozen is None:
        names += list(COUNTS)
    if m.kind == "regression":
        names += ["l2"] + ([] if m.frozen is not None else list(CELL_L2))
    else:
        names.append("hellinger")
    return names


def check_metrics(config: ExperimentConfig) -> None:
    """Refuse (InputError) a metric a setting does not define."""
    for s in config.settings:
        avail = available_metrics(build(s))
        bad = [x for x in config.metrics_for(s.name) if x not in avail]
        if bad:
            raise InputError(f"metrics {bad} are not defined for setting {s.name!r}; "
                             f"available: {avail}")


def _parameter_losses(m, fitted, truth, names, truth_model) -> dict:
    out = {}
    for name in names:
        if name in VORONOI:
            out[name] = VORONOI[name](m, fitted, truth, truth_model=truth_model)
        elif name.startswith("D_r"):
            out[name] = L.d_r(m, fitted, truth, float(name[3:]), truth_model)
    if any(x not in out for x in names):
        out.update(L.parameter_errors(m, fitted, truth, truth_model))
    return out


def metric_fn(models: SettingModels, metrics: list[str]):
    """(fitted params, reference, truth, X_eval (N_EVAL, d)) -> {metric: scalar}, for vmapping
    over replicates. Parameter losses compare the fit with `reference` (the truth, or its best
    k-atom approximation); density / regression errors compare it with the truth."""
    m, tm = models.fit_model, models.truth_model
    ref_model = tm if models.setting.reference == "truth" else m  # G_bar has k atoms

    def fn(fitted, reference, truth, X_eval):
        out = {}
        if m.frozen is not None:
            out.update(L.prompt_errors(m, fitted, reference))
        else:
            plain = [x for x in metrics if x not in FUNCTION_ERRORS and L.SCALED not in x]
            scaled = [x for x in metrics if L.SCALED in x]
            if plain:
                out.update(_parameter_losses(m, fitted, reference, plain, ref_model))
            if scaled:
                base = _parameter_losses(m, L.to_truth_scale(m, fitted, reference), reference,
                                         [x.replace(L.SCALED, "") for x in scaled], ref_model)
                out.update({x: base[x.replace(L.SCALED, "")] for x in scaled})
        if "hellinger" in metrics:
            out["hellinger"] = L.hellinger(m, fitted, truth, X_eval, truth_model=tm)
        if "l2" in metrics:
            out["l2"] = L.l2_error(m, fitted, truth, X_eval, truth_model=tm)
        if "split_cells" in metrics:
            out["split_cells"] = L.split_cells(m, fitted, truth, X_eval, tm)
        if any(x in metrics for x in CELL_L2):
            out.update(L.cell_l2_errors(m, fitted, truth, X_eval, truth_model=tm))
        return {k: out[k] for k in metrics}

    return fn


@functools.lru_cache(maxsize=32)
def metric_evaluator(setting_json: str, metrics: tuple[str, ...]):
    """jit(vmap(metric_fn)) over replicates, compiled once per setting (not per n)."""
    models = build(Setting.model_validate_json(setting_json))
    return jit(jax.vmap(metric_fn(models, list(metrics)), in_axes=(0, None, None, None)))


N_APPROX = 50_000  # noiseless x draw on which the best k-atom approximation is fitted


@functools.lru_cache(maxsize=64)
def best_approximation(setting_json: str, n: int) -> MoEParams:
    """G_bar = argmin over k-atom parameters of ||f_G - f_G*||^2 on a fixed draw of N_APPROX
    x from the setting's x-law (noiseless least squares, Levenberg-Marquardt to tol 1e-14 from
    the exact split of the truth, i.e. the centre of the near-truth starts). The reference of
    `reference = "best_approximation"` settings: an over-specified sigmoid-gated truth whose
    over-fitted atom has beta1* != 0 cannot be split exactly (docs/models.md, sigmoid gating)."""
    setting = Setting.model_validate_json(setting_json)
    models = build(setting)
    truth = models.truth(n)
    key = jax.random.fold_in(jax.random.PRNGKey(0), zlib.crc32(b"best_approximation"))
    X = draw_x(setting.x, key, N_APPROX, setting.n_features)
    y = models.truth_model.mean(truth, X)
    assignment = None if setting.init.assignment is None else tuple(setting.init.assignment)
    start = near_truth(models.fit_model, truth, key, 0.0, assignment)
    result = fit(models.fit_model, X, y, start, estimator="lse",
                 options=FitOptions(max_iter=5000, tol=1e-14,
                                    expert_bound=setting.expert_bound))  # the fits' space
    return result.params


APPROXIMATION_FIELDS = {"gate", "truth_gate", "expert", "noise", "kind", "n_experts",
                        "n_features", "x", "init", "truth", "expert_bound"}


def reference_params(setting: Setting, truth: MoEParams, n: int) -> MoEParams:
    """What the setting's parameter errors are measured against (config `reference`). G_bar
    is computed once per model and truth: settings differing only in estimator or name share
    it, and n enters only when the truth moves with n."""
    if setting.reference == "truth":
        return truth
    moves = any(isinstance(v, NDependent) for v in setting.truth.values())
    key = setting.model_copy(update={"name": "approximation"})
    return best_approximation(key.model_dump_json(include=APPROXIMATION_FIELDS | {"name"}),
                              n if moves else 0)
