"""The experiment configs shipped with moestat, found by name (`moestat run NAME`).

In a checkout (and an editable install) they are the repository's `experiments/*.toml`; a
built wheel carries the same files as package data in `moestat/configs/` (pyproject.toml,
force-include), so `moestat run contaminated_distinguishable` works from an installed package.
"""

from __future__ import annotations

from pathlib import Path

from moestat.errors import InputError

PACKAGED = Path(__file__).resolve().parent / "configs"
CHECKOUT = Path(__file__).resolve().parents[2] / "experiments"


def config_folder() -> Path | None:
    """Where the shipped configs are: the package's data, else the checkout's folder."""
    for folder in (PACKAGED, CHECKOUT):
        if folder.is_dir() and any(folder.glob("*.toml")):
            return folder
    return None


def shipped_experiments() -> list[str]:
    """Names of the shipped experiment configs."""
    folder = config_folder()
    return sorted(p.stem for p in folder.glob("*.toml")) if folder else []


def experiment_path(name: str) -> Path:
    """The shipped config called `name` (InputError naming the shipped ones if none is)."""
    folder = config_folder()
    path = folder / f"{name}.toml" if folder else None
    if path is None or not path.is_file():
        raise InputError(f"no shipped experiment {name!r}; shipped: "
                         f"{', '.join(shipped_experiments()) or 'none'}")
    return path


def config_path(config: str | Path) -> Path:
    """A config file given as a path, or by the name of a shipped experiment."""
    path = Path(config)
    if path.exists() or path.suffix or len(path.parts) > 1:
        if not path.is_file():
            raise InputError(f"config file not found: {path}")
        return path
    return experiment_path(str(config))
