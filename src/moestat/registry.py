"""Names -> parts. A part spec is ``name`` or ``name:argument``:

gates   softmax, topk_softmax:K, temperature_softmax, activation_temperature_softmax:ACT,
        sigmoid, quadratic_softmax, quadratic_sigmoid, contaminated, input_free
experts linear, polynomial:P, constant, ridge:ACT, ridge_nobias:ACT   (ACT: sigmoid, tanh,
        relu, gelu; identity for the activation gate)
noises  gaussian, laplace
"""

from __future__ import annotations

from moestat.errors import InputError
from moestat.experts import EXPERTS, Expert
from moestat.gates import GATES, Gate
from moestat.noise import NOISES, Noise

ESTIMATORS = ("em", "mle", "lse")


def _split(spec: str) -> tuple[str, str | None]:
    if not isinstance(spec, str) or not spec.strip():
        raise InputError(f"a part name must be a non-empty string, got {spec!r}")
    name, _, arg = spec.strip().partition(":")
    return name, (arg or None)


def _int_arg(what: str, arg: str | None, default: int) -> int:
    if arg is None:
        return default
    try:
        return int(arg)
    except ValueError:
        raise InputError(f"{what} needs an integer argument, got {arg!r}") from None


def make_gate(spec: str | Gate) -> Gate:
    """Gate from a spec such as ``softmax`` or ``topk_softmax:2``."""
    if isinstance(spec, Gate):
        return spec
    name, arg = _split(spec)
    if name not in GATES:
        raise InputError(f"unknown gate {name!r}; expected one of {', '.join(GATES)}")
    cls = GATES[name]
    if name == "topk_softmax":
        k = _int_arg("topk_softmax", arg, 2)
        if k < 1:
            raise InputError(f"topk_softmax needs K >= 1, got {k}")
        return cls(k_active=k)
    if name == "activation_temperature_softmax":
        return cls(activation=arg or "tanh")
    if arg is not None:
        raise InputError(f"gate {name!r} takes no argument, got {spec!r}")
    return cls()


def make_expert(spec: str | Expert) -> Expert:
    """Expert from a spec such as ``linear``, ``polynomial:3`` or ``ridge:tanh``."""
    if isinstance(spec, Expert):
        return spec
    name, arg = _split(spec)
    if name not in EXPERTS:
        raise InputError(f"unknown expert {name!r}; expected one of {', '.join(EXPERTS)}")
    cls = EXPERTS[name]
    if name == "polynomial":
        return cls(degree=_int_arg("polynomial", arg, 2))
    if name in ("ridge", "ridge_nobias"):
        act = arg or "tanh"
        if act == "identity":
            raise InputError(f"{name} expert needs a nonlinear activation, got 'identity'")
        return cls(activation=act)
    if arg is not None:
        raise InputError(f"expert {name!r} takes no argument, got {spec!r}")
    return cls()


def make_noise(spec: str | Noise, shared: bool = False) -> Noise:
    """Noise law from its name; `shared` gives one variance for all experts (regression)."""
    if isinstance(spec, Noise):
        return spec
    name, arg = _split(spec)
    if name not in NOISES or arg is not None:
        raise InputError(f"unknown noise {spec!r}; expected one of {', '.join(NOISES)}")
    return NOISES[name](shared=shared)


def experiments_folder():
    """The repository's `experiments/` folder (shipped configs)."""
    from pathlib import Path

    return Path(__file__).resolve().parents[2] / "experiments"


def experiment_path(name: str):
    return experiments_folder() / f"{name}.toml"


def shipped_experiments() -> list[str]:
    """Names of the experiment configs shipped in the repository's `experiments/` folder."""
    folder = experiments_folder()
    return sorted(p.stem for p in folder.glob("*.toml")) if folder.is_dir() else []


def catalogue() -> dict[str, list[str]]:
    """Everything registered, for `moestat list`."""
    return {
        "experiments": shipped_experiments(),
        "gates": [make_gate(n).label if n != "activation_temperature_softmax"
                  else "activation_temperature_softmax:ACT" for n in GATES],
        "experts": ["linear", "polynomial:P", "constant", "ridge:ACT", "ridge_nobias:ACT"],
        "activations (ACT)": ["sigmoid", "tanh", "relu", "gelu", "identity (gate only)"],
        "noises": list(NOISES),
        "estimators": list(ESTIMATORS),
    }
