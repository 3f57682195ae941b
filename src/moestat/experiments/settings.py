"""A setting of a config as models: the fitted model, the data-generating model and the truth
at each n (truths may move with n: value + plus n^power)."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import numpy as np

from moestat.errors import InputError
from moestat.experiments.config import NDependent, Setting
from moestat.fit import FitOptions
from moestat.model import FrozenExpert, MixtureOfExperts, MoEParams
from moestat.registry import make_gate


@dataclass(frozen=True)
class SettingModels:
    """The models of one setting: `fit_model` (n_experts experts) is fitted to data drawn from
    `truth_model` (k* experts, and its own gate when the setting gives `truth_gate`)."""

    setting: Setting
    fit_model: MixtureOfExperts
    truth_model: MixtureOfExperts

    def truth(self, n: int) -> MoEParams:
        """The true parameters at sample size n."""
        named = {}
        for name, v in self.setting.truth.items():
            if isinstance(v, NDependent):
                named[name] = np.asarray(v.value, float) + np.asarray(v.plus, float) * \
                    float(n) ** v.power
            else:
                named[name] = np.asarray(v, float)
        return self.truth_model.canonicalize(self.truth_model.from_named(named))

    @property
    def options(self) -> FitOptions:
        """The estimator options the setting asks for (iterations, tolerance, expert box)."""
        s = self.setting
        return FitOptions(max_iter=s.max_iter, tol=s.tol, expert_bound=s.expert_bound,
                          accelerate=s.accelerate, learning_rate=s.learning_rate,
                          batch_size=s.batch_size, finish=s.finish,
                          handover_tol=s.handover_tol)


def fitted_model(setting: Setting) -> MixtureOfExperts:
    """The model a setting fits (n_experts experts)."""
    frozen = None
    if setting.frozen is not None:
        f = setting.frozen
        frozen = FrozenExpert.create(f.expert, f.noise, f.params, f.var)
    return MixtureOfExperts.create(setting.gate, setting.expert, setting.noise,
                                   n_experts=setting.n_experts, n_features=setting.n_features,
                                   kind=setting.kind, frozen=frozen)


def build(setting: Setting) -> SettingModels:
    """Models of a setting (fitted with n_experts; truth with k* from its parameters)."""
    fit_model = fitted_model(setting)
    k_true = None
    for name, v in setting.truth.items():
        if name.startswith("expert."):
            arr = np.asarray(v.value if isinstance(v, NDependent) else v, float)
            k_true = arr.shape[0] if arr.ndim else None
            break
    if k_true is None:
        raise InputError(f"settings.{setting.name}.truth: expert parameters with one row per "
                         "true expert are required")
    truth_model = dataclasses.replace(fit_model, n_experts=k_true)
    if setting.truth_gate is not None:
        truth_gate = make_gate(setting.truth_gate)
        truth_model = dataclasses.replace(truth_model, gate=truth_gate,
                                          expert=fit_model.expert.for_gate(truth_gate))
        if truth_model.gate.Params != fit_model.gate.Params:
            raise InputError(f"settings.{setting.name}.truth_gate: {setting.truth_gate!r} has "
                             f"other parameters than the fitted gate {setting.gate!r}")
    models = SettingModels(setting, fit_model, truth_model)
    try:
        models.truth(1000)
    except (ValueError, TypeError) as e:
        raise InputError(f"settings.{setting.name}.truth: {str(e).splitlines()[0]}") from None
    return models


@functools.lru_cache(maxsize=32)
def built(setting_json: str) -> SettingModels:
    """build(), once per setting (given as its JSON) in a sweep process."""
    return build(Setting.model_validate_json(setting_json))


@functools.lru_cache(maxsize=256)
def truth_at(setting_json: str, n: int) -> MoEParams:
    """The setting's truth at n, once per (setting, n) in a sweep process."""
    return built(setting_json).truth(n)
