"""The checks a resolved config passes before any cell runs (the schema's own checks are in
config.py): every true parameter finite and inside its part's parameter space at every n of
the grid, non-degenerate input laws, near-truth split assignments that name true atoms, and
one replicate of the largest cell within the memory budget. Each failure is one InputError
line naming the field."""

from __future__ import annotations

import numpy as np

from moestat.errors import InputError
from moestat.experiments.config import ExperimentConfig, NDependent, Setting
from moestat.experiments.settings import SettingModels, build, fitted_model
from moestat.fit import bytes_per_fit
from moestat.memory import refuse_over_budget

X_LIMIT = 1e150  # |x| beyond which x^2 overflows float64 (the estimator's limit too)


def check_runnable(config: ExperimentConfig) -> None:
    """Raise InputError for the first value no cell could run with (module docstring)."""
    grid = config.n_values()
    for setting in config.settings:  # the cheap checks first: no truth is built for them
        where = f"settings.{setting.name}"
        if not setting.n_values(grid):
            raise InputError(f"{where}.n_max: {setting.n_max} is below the smallest n of the "
                             f"grid ({grid[0]}): the setting would run no cell")
        _check_input_law(setting, where)
        _check_memory(setting, grid, where)
    for setting in config.settings:
        where = f"settings.{setting.name}"
        models = build(setting)
        moving = any(isinstance(v, NDependent) for v in setting.truth.values())
        for n in grid if moving else grid[:1]:  # a fixed truth is the same at every n
            _check_truth(models, n, where)
        _check_assignment(models, where)


def _check_input_law(setting: Setting, where: str) -> None:
    x = setting.x
    if x.dist == "uniform" and not x.low < x.high:
        raise InputError(f"{where}.x: uniform needs low < high, got low = {x.low:g}, "
                         f"high = {x.high:g}")
    if x.dist == "uniform" and max(abs(x.low), abs(x.high)) >= X_LIMIT:
        raise InputError(f"{where}.x: inputs of size {X_LIMIT:g} and beyond overflow when "
                         "squared; rescale the input law")


def _check_truth(models: SettingModels, n: int, where: str) -> None:
    truth = models.truth(n)
    model = models.truth_model
    for part_name, part, block in zip(("gate", "expert", "noise"), model.parts(), truth,
                                      strict=True):
        for field, value in block._asdict().items():
            v = np.asarray(value, float)
            name = f"{where}.truth.{part_name}.{field}"
            at = "" if not _moves(models, part_name, field) else f" at n = {n}"
            if not np.all(np.isfinite(v)):
                raise InputError(f"{name}: every value must be finite{at}")
            if field in part.positive and not np.all(v > 0):
                raise InputError(f"{name}: must be > 0{at}, got {v.min():g}")
            if field in part.unit and not np.all((v > 0) & (v < 1)):
                raise InputError(f"{name}: must lie in (0, 1){at}")
    if models.setting.frozen is not None:
        f = models.setting.frozen
        for field, value in f.params.items():
            if not np.all(np.isfinite(np.asarray(value, float))):
                raise InputError(f"{where}.frozen.params.{field}: every value must be finite")


def _moves(models: SettingModels, part: str, field: str) -> bool:
    return isinstance(models.setting.truth.get(f"{part}.{field}"), NDependent)


def _check_assignment(models: SettingModels, where: str) -> None:
    init = models.setting.init
    if init.kind != "near_truth" or init.assignment is None:
        return
    k, k_true = models.fit_model.n_experts, models.truth_model.n_experts
    a = init.assignment
    if len(a) != k:
        raise InputError(f"{where}.init.assignment: needs one true atom per fitted expert "
                         f"({k} entries), got {len(a)}")
    bad = [v for v in a if not 0 <= v < k_true]
    if bad:
        raise InputError(f"{where}.init.assignment: true atoms are numbered 0..{k_true - 1}, "
                         f"got {bad[0]}")


def _check_memory(setting: Setting, grid: list[int], where: str) -> None:
    """One replicate of the largest cell must fit the budget: blocks split replicates, never
    rows (padding only raises smaller n to sizes of the grid)."""
    n = max(grid)
    refuse_over_budget(where, n, bytes_per_fit(fitted_model(setting), n, setting.estimator,
                                                setting.finish))
