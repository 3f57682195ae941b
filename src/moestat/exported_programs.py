"""Fit programs kept on disk as `jax.export` artefacts, so that a fresh process skips tracing.

The persistent XLA cache (moestat/cache.py) saves a program's compile, but a fresh process
must still trace and lower the program to find it there: about 3 s for the emEM fit of
`moestat fit`, more than the fit itself on a user's table. An exported program (its StableHLO,
serialised with its input and output structure) skips both: a fresh process deserialises it
(~0.3 s) and the XLA cache supplies the executable.

File: <cache dir>/exported/<key>.jaxexp, where the key hashes the program's name and static
arguments, the argument shapes and dtypes, jax's version and moestat's own source (every .py
file of the package), so that any change to the code that traced it makes a new entry.
Writes are atomic; an unreadable entry is traced again and overwritten. Used only where the
XLA cache is on (the command line, sweep workers).
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

import jax
from jax import export

from moestat.compiling import jit

SUFFIX = ".jaxexp"


@functools.cache
def source_hash() -> str:
    """SHA-256 over moestat's .py files (path and content), in path order."""
    root = Path(__file__).parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


@functools.cache
def _register_pytrees() -> None:
    """Named tuples that fit programs take and return, registered for serialisation."""
    from moestat.fit.result import FitResult
    from moestat.model import MoEParams
    from moestat.registry import EXPERTS, GATES, NOISES

    classes = {FitResult, MoEParams}
    for table in (GATES, EXPERTS, NOISES):
        classes.update(part.Params for part in table.values())
    for cls in sorted(classes, key=lambda c: f"{c.__module__}.{c.__qualname__}"):
        export.register_namedtuple_serialization(
            cls, serialized_name=f"{cls.__module__}.{cls.__qualname__}")


def _key(name: str, static, args) -> str:
    shapes = [(a.shape, str(a.dtype)) for a in jax.tree_util.tree_leaves(args)]
    text = repr((name, static, shapes, jax.__version__, source_hash()))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def call_exported(directory: str | None, name: str, static, build, *args,
                  profile: str = "fit"):
    """`build()(*args)`, from the exported program on disk when there is one (else traced,
    exported and written there). `build` returns the function to jit; `static` (hashable,
    with a stable repr) names everything the traced program depends on besides the shapes
    of `args`; `profile` the compile options (moestat/compiling.py). directory None: plain
    jit, nothing on disk."""
    if directory is None:
        return jit(build(), profile)(*args)
    _register_pytrees()
    path = Path(directory) / "exported" / (_key(name, static, args) + SUFFIX)
    if (path, profile) not in _LOADED:
        _LOADED[path, profile] = jit(_load_or_export(path, build, args).call, profile)
    return _LOADED[path, profile](*args)


_LOADED: dict = {}  # (path, profile) -> the jitted call of its exported program


def _load_or_export(path: Path, build, args):
    exported = None
    if path.exists():
        try:
            exported = export.deserialize(bytearray(path.read_bytes()))
        except Exception:  # noqa: BLE001 - a damaged or foreign entry: trace it again
            exported = None
    if exported is None:
        exported = export.export(jit(build()))(*args)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(exported.serialize())
        os.replace(tmp, path)
    return exported
