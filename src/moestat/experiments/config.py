"""Experiment configuration: TOML validated by pydantic v2 (configs are data, never code).

    name = "contaminated_distinguishable"
    seed = 0                      # root seed
    replicates = 40
    block = 20                    # replicates per cell (one vmapped computation)
    metrics = ["exp_tau", "beta", "eta", "nu"]   # default; a setting may give its own
    n = { start = 1e3, stop = 1e5, num = 20 }   # log-spaced (rounded), or n = [1000, 2000]

    [[settings]]
    name = "distinguishable"
    gate = "contaminated"; expert = "ridge_nobias:tanh"; noise = "gaussian"
    kind = "mixture"; estimator = "em"; n_experts = 1; n_features = 8
    accelerate = "squarem"; finish = "newton"   # EM options (fit/result.py FitOptions)
    x = { dist = "normal" }       # or { dist = "uniform", low = 0, high = 1 }
    init = { kind = "near_truth", scale = 0.1 }   # best_of = 4: best of 4 near-truth starts;
                                  # { kind = "random", n_init = 5 }: data-driven restarts
    frozen = { expert = "ridge_nobias:tanh", noise = "laplace", var = 0.001,
               params = { eta = [1, 0, 0, 0, 0, 0, 0, 0] } }
    metrics = ["D2", "a@overfitted"]   # optional: this setting's own metrics
    truth_gate = "topk_softmax:2"      # optional: data-generating gate (default: gate)
    reference = "truth"                # or "best_approximation" (regression): what parameter
                                       # errors are measured against
    [settings.truth]              # named parameters of the true model (k* experts)
    "gate.beta" = [...]           # or truth = "NAME": the table [truths.NAME], shared
    "expert.eta" = { value = [[...]], plus = [[...]], power = -0.125 }   # value + plus n^power

    data = "distinguishable"           # optional: fit the simulated data of that setting
                                       # (same replicate seeds: paired with it)
    local_window = 5              # n values per local slope in the report
    init_scales = [0.05, 0.2]     # optional: each near-truth setting also fitted, to its own
                                  # data, from starts at these scales ("<name>.init<scale>")
    headline = "median"           # the statistic claims are judged on (mean or median)
    [[claims]]                    # declared before the run; `moestat report` judges them
    expect = "slope"; setting = "distinguishable"; metric = "beta"; value = -0.5; tol = 0.1
    [[claims]]
    expect = "contrast"; metric = "D2"; faster = "a"; slower = "b"; margin = 0.1
                                  # slower_metric = "...": the slower setting's own name
    [[claims]]
    expect = "slower_than_polynomial"; setting = "b"; metric = "tau"
    [theory]  exp_tau = -0.5      # or per setting: [theory.distinguishable] exp_tau = -0.5
    [paper]   exp_tau = -0.52
    [presets.quick]  replicates = 8;  n = { start = 1e3, stop = 1e4, num = 5 }

Every key is checked (unknown keys are refused) and errors name the field.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from moestat.errors import SEED_MAX, InputError, check_seed
from moestat.experiments.config_reading import read_toml, validate
from moestat.memory import refuse_oversized_settings


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


CLASSIFICATION_KIND = "attention_classification"  # configs of moestat.attention.experiment
RESOLVED = "config.resolved.toml"  # a run directory's resolved config


def is_classification(data: dict) -> bool:
    """A config (as read from TOML) of the attention classification experiment."""
    return data.get("kind") == CLASSIFICATION_KIND


def holds_classification(out: Path) -> bool:
    """A run directory of the attention classification experiment (not a rate study)."""
    path = Path(out) / RESOLVED
    try:
        return path.is_file() and is_classification(tomllib.loads(path.read_text()))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        return False


MAX_N = 100_000_000  # sample sizes beyond this are refused (a typo, not a study)
MAX_REPLICATES = 100_000


class LogGrid(Strict):
    start: Annotated[float, Field(ge=2, le=MAX_N)]
    stop: Annotated[float, Field(ge=2, le=MAX_N)]
    num: Annotated[int, Field(ge=1, le=1000)]

    def values(self) -> list[int]:
        if self.stop < self.start:
            raise InputError(f"n grid: stop ({self.stop}) is below start ({self.start})")
        vals = np.unique(np.round(np.logspace(np.log10(self.start), np.log10(self.stop),
                                              self.num)).astype(int))
        return [int(v) for v in vals]


NGrid = list[Annotated[int, Field(ge=2, le=MAX_N)]] | LogGrid


class NDependent(Strict):
    """value + plus * n^power (elementwise): truths that move with the sample size."""

    value: Any
    plus: Any
    power: float


class XDist(Strict):
    dist: Literal["normal", "uniform"] = "normal"
    low: float = 0.0
    high: float = 1.0


class Init(Strict):
    kind: Literal["near_truth", "random"] = "near_truth"
    scale: Annotated[float, Field(ge=0)] = 0.1
    n_init: Annotated[int, Field(ge=1, le=100)] = 5  # random (data-driven) restarts
    # near-truth starts per replicate, the best kept (start j > 0 from further keys)
    best_of: Annotated[int, Field(ge=1, le=100)] = 1
    assignment: list[int] | None = None

    @model_validator(mode="after")
    def _best_of_is_for_near_truth(self):
        if self.best_of > 1 and self.kind != "near_truth":
            raise ValueError("best_of applies to near_truth starts; random starts use n_init")
        return self

    @property
    def starts(self) -> int:
        """Fits per replicate: n_init random starts, or best_of near-truth starts."""
        return self.n_init if self.kind == "random" else self.best_of


class Frozen(Strict):
    expert: str
    noise: str
    var: Annotated[float, Field(gt=0)]
    params: dict[str, Any]


class Setting(Strict):
    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")]
    gate: str = "softmax"
    truth_gate: str | None = None  # gate of the data-generating model (default: `gate`), e.g.
    # topk_softmax:2 data fitted with topk_softmax:3
    expert: str = "linear"
    noise: str = "gaussian"
    kind: Literal["mixture", "regression", "classification"] = "mixture"
    estimator: Literal["em", "mle", "newton", "lse", "sgd"] = "em"
    n_experts: Annotated[int, Field(ge=1, le=64)]
    n_features: Annotated[int, Field(ge=1, le=1024)]
    x: XDist = XDist()
    init: Init = Init()
    frozen: Frozen | None = None
    truth: dict[str, NDependent | float | list[Any]]  # a table can only be NDependent
    metrics: Annotated[list[str], Field(min_length=1)] | None = None  # overrides the global
    reference: Literal["truth", "best_approximation"] = "truth"  # what parameter errors
    # are measured against (best_approximation: regression settings, metrics.best_approximation)
    expert_bound: Annotated[float, Field(gt=0)] | None = None  # |expert coef| box (compact)
    max_iter: Annotated[int, Field(ge=1, le=1_000_000)] = 500
    tol: Annotated[float, Field(gt=0)] = 1e-8
    accelerate: Literal["none", "squarem"] = "none"  # EM extrapolated along its path
    finish: Literal["none", "newton"] = "none"  # newton: EM to handover_tol, then Newton to tol
    handover_tol: Annotated[float, Field(gt=0)] = 1e-6
    learning_rate: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 0.1  # sgd; max_iter =
    batch_size: Annotated[int, Field(ge=1)] = 32  # sgd                        # its epochs
    data: str | None = None  # fit the simulated data of this setting (its replicate keys)
    n_max: Annotated[int, Field(ge=2, le=MAX_N)] | None = None  # run only the grid's n <= this
    # (a costly estimator on part of the grid; the other settings run all of it)

    def n_values(self, grid: list[int]) -> list[int]:
        """The sample sizes of the grid this setting runs."""
        return [n for n in grid if self.n_max is None or n <= self.n_max]

    @property
    def data_stream(self) -> str:
        """The name the replicate keys are drawn from (grid.replicate_keys)."""
        return self.data or self.name

    @model_validator(mode="after")
    def _options_fit_the_model(self):
        if self.reference == "best_approximation" and self.kind != "regression":
            raise ValueError("reference = 'best_approximation' needs kind = 'regression' (it "
                             "is the least-squares projection of the regression function)")
        if self.finish == "newton" and self.estimator != "em":
            raise ValueError(f"finish = 'newton' follows EM; estimator {self.estimator!r} has "
                             "no EM phase")
        return self


class SlopeClaim(Strict):
    """The headline slope of (setting, metric) is value +- tol."""

    expect: Literal["slope"]
    setting: str
    metric: str
    value: float
    tol: Annotated[float, Field(gt=0)]


class ContrastClaim(Strict):
    """`metric` converges faster in setting `faster` than in `slower` (there `slower_metric`,
    when the two models name the block differently): slope(faster) - slope(slower) < -margin."""

    expect: Literal["contrast"]
    metric: str
    faster: str
    slower: str
    slower_metric: str | None = None
    margin: Annotated[float, Field(ge=0)] = 0.1

    @property
    def settings(self) -> tuple[str, str]:
        return (self.faster, self.slower)

    def metric_of(self, setting: str) -> str:
        return self.slower_metric or self.metric if setting == self.slower else self.metric


class PolynomialClaim(Strict):
    """(setting, metric) converges slower than any polynomial: err = C (log n)^(-b) fits
    better than err = C n^(-a)."""

    expect: Literal["slower_than_polynomial"]
    setting: str
    metric: str


Claim = Annotated[SlopeClaim | ContrastClaim | PolynomialClaim, Field(discriminator="expect")]


def claim_settings(claim) -> tuple[str, ...]:
    return claim.settings if isinstance(claim, ContrastClaim) else (claim.setting,)


class Preset(Strict):
    replicates: Annotated[int, Field(ge=1, le=MAX_REPLICATES)] | None = None
    block: Annotated[int, Field(ge=1, le=MAX_REPLICATES)] | None = None
    n: NGrid | None = None


class ExperimentConfig(Strict):
    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")]
    description: str = ""
    seed: Annotated[int, Field(ge=0, le=SEED_MAX)] = 0
    replicates: Annotated[int, Field(ge=1, le=MAX_REPLICATES)]
    block: Annotated[int, Field(ge=1, le=MAX_REPLICATES)] = 20
    metrics: list[str] = []  # default for settings without their own `metrics`
    n: NGrid
    settings: Annotated[list[Setting], Field(min_length=1)]
    local_window: Annotated[int, Field(ge=2)] = 5  # n values per local slope (report)
    theory: dict[str, float | dict[str, float]] = {}
    paper: dict[str, float | dict[str, float]] = {}
    presets: dict[str, Preset] = {}
    claims: list[Claim] = []
    headline: Literal["mean", "median"] | None = None  # the statistic claims are judged on
    init_scales: list[Annotated[float, Field(gt=0)]] = []  # extra near-truth start scales
    # (experiments/init_scales.py expands them when the config is resolved)
    truths: dict[str, dict[str, NDependent | float | list[Any]]] = {}  # named truth tables,
    # used by settings whose truth is their name

    @model_validator(mode="before")
    @classmethod
    def _named_truths(cls, data):
        """A setting's `truth = "NAME"` becomes the table [truths.NAME]."""
        if not isinstance(data, dict) or not isinstance(data.get("settings"), list):
            return data
        truths = data.get("truths") or {}
        settings = []
        for i, s in enumerate(data["settings"]):
            if isinstance(s, dict) and isinstance(s.get("truth"), str):
                if not isinstance(truths, dict) or s["truth"] not in truths:
                    raise ValueError(f"settings[{i}].truth: no table [truths.{s['truth']}]")
                s = {**s, "truth": truths[s["truth"]]}
            settings.append(s)
        return {**data, "settings": settings}

    @field_validator("n")
    @classmethod
    def _grid_not_empty(cls, v):
        if isinstance(v, list) and not v:
            raise ValueError("the n grid is empty")
        return v

    @field_validator("settings")
    @classmethod
    def _unique_names(cls, v):
        names = [s.name for s in v]
        if len(set(names)) != len(names):
            raise ValueError(f"setting names must be unique, got {names}")
        return v

    @model_validator(mode="after")
    def _every_setting_has_metrics(self):
        for s in self.settings:
            if not (s.metrics or self.metrics):
                raise ValueError(f"setting {s.name!r} has no metrics (give `metrics` at the "
                                 "top level or in the setting)")
        return self

    @model_validator(mode="after")
    def _data_names_a_setting(self):
        by_name = {s.name: s for s in self.settings}
        for s in self.settings:
            if s.data is None or s.data == s.name:
                continue
            other = by_name.get(s.data)
            if other is None:
                raise ValueError(f"setting {s.name!r}: data = {s.data!r} is not a setting")
            if other.data not in (None, other.name):
                raise ValueError(f"setting {s.name!r}: data = {s.data!r} itself uses the data "
                                 f"of {other.data!r}; name that one")
        return self

    @model_validator(mode="after")
    def _claims_name_settings_and_metrics(self):
        names = [s.name for s in self.settings]
        copies = [f"{s.name}.init{scale:g}" for s in self.settings
                  if s.init.kind == "near_truth" for scale in self.init_scales
                  if scale != s.init.scale]  # what init_scales.expand will add
        for i, c in enumerate(self.claims):
            for name in claim_settings(c):
                if name not in names + copies:
                    raise ValueError(f"claims[{i}]: no setting {name!r}; settings: "
                                     f"{names + copies}")
                metric = c.metric_of(name) if isinstance(c, ContrastClaim) else c.metric
                if metric not in self.metrics_for(base_setting(name)):
                    raise ValueError(f"claims[{i}]: setting {name!r} has no metric {metric!r}")
        if self.claims and self.headline is None:
            raise ValueError("claims need `headline` = 'mean' or 'median': the statistic they "
                             "are judged on, chosen before the run")
        return self

    def metrics_for(self, setting: str) -> list[str]:
        """The setting's own `metrics`, else the global list."""
        s = next(x for x in self.settings if x.name == setting)
        return list(s.metrics or self.metrics)

    def all_metrics(self) -> list[str]:
        """Every metric of any setting, in first-seen order."""
        return list(dict.fromkeys(m for s in self.settings for m in self.metrics_for(s.name)))

    def n_values(self) -> list[int]:
        return sorted(set(self.n.values() if isinstance(self.n, LogGrid) else self.n))

    def expected(self, table: str, setting: str, metric: str) -> float | None:
        """theory / paper slope for (setting, metric): per-setting entry, else global."""
        t = getattr(self, table)
        setting = setting if setting in t else base_setting(setting)
        if isinstance(t.get(setting), dict):
            return t[setting].get(metric)
        return v if isinstance(v := t.get(metric), float | int) else None

    def with_preset(self, preset: str | None) -> ExperimentConfig:
        if preset is None:
            return self
        p = pick_preset(self.presets, preset)
        changes = p.model_dump(exclude_none=True) | ({} if p.n is None else {"n": p.n})
        return self.model_copy(update=changes)


def base_setting(name: str) -> str:
    """The setting an init_scales copy "<name>.init<scale>" was made from (else name)."""
    head, sep, tail = name.rpartition(".init")
    return head if sep and tail.replace(".", "", 1).replace("e-", "", 1).isdigit() else name


def pick_preset(presets: dict, name: str):
    """presets[name], or a one-line InputError listing the defined presets."""
    if name not in presets:
        raise InputError(f"unknown preset {name!r}; the config defines "
                         f"{sorted(presets) or 'none'}")
    return presets[name]


def parse_config(data: dict, source: str = "config") -> ExperimentConfig:
    return validate(ExperimentConfig, data, source)


def load_config(path: str | Path) -> ExperimentConfig:
    """Read and validate a TOML experiment file; one-line InputError on any problem."""
    return parse_config(read_toml(path), str(path))


def load_for_run(path: str | Path, preset: str | None = None,
                 seed: int | None = None) -> ExperimentConfig:
    """The config a run of `path` uses (preset applied, seed overridden), with the checks
    that need no JAX: the schema, the seed, and each setting's rows at the largest n within
    the memory budget. The command line calls it before importing JAX."""
    config = load_config(path).with_preset(preset)
    if seed is not None:
        check_seed(seed)
        config = config.model_copy(update={"seed": seed})
    refuse_oversized_settings(config.settings, max(config.n_values()))
    return config
