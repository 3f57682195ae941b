"""Compiled fit programs kept on disk between processes, so that a fresh process skips
tracing, lowering and the XLA cache's look-up.

The persistent XLA cache (moestat/cache.py) saves a program's compile, but a fresh process
must still trace and lower the program to find it there (~3 s for the emEM fit of
`moestat fit` before anything was kept; ~0.25 s of lowering with the traced program kept as a
`jax.export` artefact). The store keeps the compiled executable itself
(`jax.experimental.serialize_executable`, with its input and output tree structure): a fresh
process loads it and calls it, nothing traced or lowered.

File: <cache dir>/programs/<key>.xla, where the key hashes the program's name and static
arguments, the argument shapes and dtypes, the compile profile and its options, jax's and
jaxlib's versions, the device kind and the host CPU's feature flags (an executable compiled
for one CPU is not loaded on another that shares the directory), and moestat's own source
(every .py file of the package), so that any change to the code that traced it makes a new
entry. Before the first load, jaxlib's LAPACK kernels are loaded (`_initialize_kernels`).
Writes are atomic; an unreadable entry is compiled again and overwritten. The entries
are the user's own cache, written by moestat (they are unpickled: do not point the cache at a
directory others can write). Used by the table fit (`table_fit.py`: `moestat fit`, the fit
and its standard errors) where the XLA cache is on; sweeps compile through jit and the XLA
cache.

Several programs a caller is about to run compile at once: `prepare` traces and lowers a
program on the calling thread and hands its compile to a worker thread (XLA releases the GIL
while it compiles), so the next program is traced while the first compiles and two compile
side by side on two cores; `call_stored` waits for the compile it needs. The XLA cache is
switched off process-wide while any store compile runs (`_xla_cache_bypassed`).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import pickle
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import jax
from jax.experimental import serialize_executable

from moestat.compiling import PROFILES, jit

SUFFIX = ".xla"


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
def host_signature() -> str:
    """The versions and machine an executable is valid for: jax, jaxlib, the device kind and
    (Linux) the CPU's feature flags."""
    flags = ""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        pass
    import jaxlib

    return repr((jax.__version__, jaxlib.__version__, jax.devices()[0].device_kind, flags))


def _key(name: str, static, args, profile: str) -> str:
    shapes = [(a.shape, str(a.dtype)) for a in jax.tree_util.tree_leaves(args)]
    text = repr((name, static, shapes, profile, PROFILES[profile], host_signature(),
                 source_hash()))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def prepare(directory: str | None, name: str, static, build, *args,
            profile: str = "fit") -> Path | None:
    """Make `build()` ready for `call_stored` with arguments shaped like `args` (arrays or
    `jax.ShapeDtypeStruct`s): loaded from disk, or traced and lowered here and compiled (then
    written to disk) on a worker thread; returns its entry's path. directory None: nothing
    (plain jit compiles at the call)."""
    if directory is None:
        return None
    path = Path(directory) / "programs" / (_key(name, static, args, profile) + SUFFIX)
    if path not in _LOADED:
        _LOADED[path] = _load(path) or _compiler().submit(
            _compile_and_store, path, jit(build(), profile).lower(*args))
    return path


def call_stored(directory: str | None, name: str, static, build, *args,
                profile: str = "fit"):
    """`build()(*args)`, by the compiled program on disk when there is one (else compiled and
    written there). `build` returns the function to jit; `static` (hashable, with a stable
    repr) names everything the traced program depends on besides the shapes of `args`;
    `profile` the compile options (moestat/compiling.py). directory None: plain jit, nothing
    on disk (jit's own cache, one jitted function per name, static and profile)."""
    if directory is None:
        if (name, static, profile) not in _JITTED:
            _JITTED[name, static, profile] = jit(build(), profile)
        return _JITTED[name, static, profile](*args)
    path = prepare(directory, name, static, build, *args, profile=profile)
    if isinstance(_LOADED[path], Future):
        _LOADED[path] = _LOADED[path].result()
    return _LOADED[path](*args)


@functools.cache
def _compiler() -> ThreadPoolExecutor:
    """The worker threads that compile (as many as cores, at most 4)."""
    return ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1)),
                              thread_name_prefix="moestat-compile")


def finish_compiles() -> None:
    """Wait for every compile handed to a worker thread (each writes its program to disk)."""
    if _compiler.cache_info().currsize:
        _compiler().shutdown(wait=True)
        _compiler.cache_clear()


_LOADED: dict = {}  # path -> the loaded compiled program, or the Future of its compile
_JITTED: dict = {}  # (name, static, profile) -> jit(build()), when nothing is kept on disk


def _load(path: Path):
    if not path.exists():
        return None
    try:
        _initialize_kernels()
        payload, in_tree, out_tree = pickle.loads(path.read_bytes())
        return serialize_executable.deserialize_and_load(payload, in_tree, out_tree)
    except Exception:  # noqa: BLE001 - a damaged or foreign entry: compile it again
        return None


@functools.cache
def _initialize_kernels() -> None:
    """jaxlib's LAPACK kernels (custom calls of the fit's linear solves), which jax loads only
    while lowering a program that uses them: a loaded executable that calls them before they
    are loaded crashes the process. An ImportError (a jax without this hook) makes every
    entry a miss: compiled instead of loaded."""
    from jax._src.lax.linalg import initialize_lapack

    initialize_lapack()


def _compile_and_store(path: Path, lowered):
    compiled = _compile_fresh(lowered)
    tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(pickle.dumps(serialize_executable.serialize(compiled)))
        os.replace(tmp, path)
    except OSError:  # a cache that cannot be written (read-only, full): this process still fits
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    return compiled


def _compile_fresh(lowered):
    """lowered.compile() by XLA itself, the persistent cache bypassed: an executable that the
    cache supplied serialises without some of its kernels (jaxlib 0.10: its load then fails
    with "Function ..._kernel not found"), so what the store keeps is always compiled here."""
    with _xla_cache_bypassed():
        return lowered.compile()


_BYPASS = threading.Lock()
_bypass_state = {"compiles": 0, "enabled": None}  # store compiles running; the setting before


@contextlib.contextmanager
def _xla_cache_bypassed():
    """The XLA cache off (process-wide) while at least one store compile runs, then back as
    it was."""
    from jax.experimental.compilation_cache import compilation_cache

    with _BYPASS:
        if _bypass_state["compiles"] == 0:
            _bypass_state["enabled"] = jax.config.jax_enable_compilation_cache
            compilation_cache.reset_cache()
            jax.config.update("jax_enable_compilation_cache", False)
        _bypass_state["compiles"] += 1
    try:
        yield
    finally:
        with _BYPASS:
            _bypass_state["compiles"] -= 1
            if _bypass_state["compiles"] == 0:
                jax.config.update("jax_enable_compilation_cache", _bypass_state["enabled"])
                compilation_cache.reset_cache()
