"""How moestat's programs are compiled: `jax.jit` with XLA options chosen for compile time.

A cold sweep spends a large part of its time compiling (about 12 s of a 31 s full
contaminated run before these options), and XLA's CPU defaults are not the cheapest way to
compile moestat's programs. Three profiles, measured on the 2-core machine
(docs/performance.md, "Compilation"):

* "fit" (EM and other estimators, metrics): `xla_cpu_use_fusion_emitters=False`, XLA's older
  loop emitters instead of its MLIR fusion emitters. The contaminated EM fit compiles in 0.9 s
  instead of 1.8 s, runs as fast and gives bit-for-bit the same results.
* "data" (the sweep's sampler and data buffers):
  `xla_backend_optimization_level=2`. The threefry sampler compiles in 0.7 s instead of
  1.3-1.6 s, runs within 10% as fast (the loop emitters would run it 1.35x slower) and draws
  bit-for-bit the same data (checked for every setting of experiments/*.toml; level 0 changes
  the bits).
* "small" (programs whose run time is negligible: near-truth starts, replicate keys, the
  held-out x draw): both options. The contaminated start compiles in ~0.5 s instead of ~1.1 s
  (the loop emitters alone were slower than XLA's defaults for it), bit-for-bit the same
  starts for every shipped setting; the key programs are integer threefry (exact under any
  options).

* "table" and "table_small" (a user's table of at most TABLE_ROWS, SMALL_TABLE_ROWS padded
  rows, `table_fit.fit_table`): the "fit" options and LLVM's optimisation level 1, 0. A
  first-ever `moestat fit` of a small table is mostly tracing and compiling its programs
  (the program store's two emEM programs, compiled side by side, and the SE program:
  moestat/program_store.py). Level 0 halves the compile and runs ~2x slower. Probes of the
  emEM program in-process (compile / run of 20 restarts): k = 2, 256 rows, level 1 2.3-2.4 s
  / 0.02 s, level 0 1.2 s / 0.06 s; k = 3, 256 rows, 2.5 s / 0.17 s against 1.2 s / 0.32 s;
  k = 4, 1,024 rows, a fit that runs to max_iter, 3.3 s / 1.7 s against 1.8 s / 3.7 s. So
  tables of up to 256 padded rows compile at level 0 (at most ~0.15 s more per fit, ~1.2 s
  less once per shape), larger ones up to 4,096 at level 1 (there a slow fit would lose
  seconds on every run; 4,096 rows: compile 4.2 s / run 1.3 s at level 1, against XLA's
  default 5.5 s / 1.3 s). In fresh processes, interleaved, medians of 5, a first-ever
  `moestat fit` of a 200-row table (k = 2) took 3.7 s at level 0 against 5.6 s at level 1,
  cache-warm 1.57 s against 1.69 s. Same optimum (log-likelihoods equal to the last digit
  printed). The standard errors' program, whose work is one Hessian, compiles at level 0 up
  to TABLE_ROWS rows (`one_pass_profile`). Sweeps keep "fit", so their results are
  unchanged.

The options are decided once per process and profile at the first compile (after `--device`
has chosen the backend): on the CPU when this jaxlib accepts them (a trial compile), else None
— XLA's defaults (a GPU, or a jaxlib without the option).
"""

from __future__ import annotations

import functools

import jax

PROFILES = {
    "fit": {"xla_cpu_use_fusion_emitters": False},
    "data": {"xla_backend_optimization_level": 2},
    "small": {"xla_cpu_use_fusion_emitters": False, "xla_backend_optimization_level": 2},
    "table": {"xla_cpu_use_fusion_emitters": False, "xla_backend_optimization_level": 1},
    "table_small": {"xla_cpu_use_fusion_emitters": False, "xla_backend_optimization_level": 0},
}
SMALL_TABLE_ROWS = 256  # a user's table up to this many (padded) rows: "table_small"
TABLE_ROWS = 4096  # up to this many: "table"


def table_profile(rows: int) -> str:
    """The profile of a user's table fit with `rows` (padded) rows."""
    return ("table_small" if rows <= SMALL_TABLE_ROWS else "table" if rows <= TABLE_ROWS
            else "fit")


def one_pass_profile(rows: int) -> str:
    """The profile of a program over a user's table of `rows` (padded) rows that passes over
    the data a fixed, small number of times (the standard errors' Hessian): "table_small" up
    to TABLE_ROWS rows — level 0 compiles the SE program in ~0.4x the time (0.13 s against
    0.34 s, k = 2, 1,024 rows), the same numbers, and runs it in 1.5 ms against 1.3 ms — else
    "fit"."""
    return "table_small" if rows <= TABLE_ROWS else "fit"


@functools.cache
def compile_options(profile: str = "fit") -> dict | None:
    """PROFILES[profile] on a CPU backend whose XLA accepts it, else None (XLA's defaults)."""
    options = PROFILES[profile]
    if jax.default_backend() != "cpu":
        return None
    try:
        jax.jit(lambda x: x + 1.0, compiler_options=options).lower(1.0).compile()
    except Exception:  # noqa: BLE001 - an XLA without the option: its defaults
        return None
    return dict(options)


def jit(fun, profile: str = "fit", **kwargs):
    """jax.jit(fun, compiler_options=compile_options(profile), **kwargs)."""
    return jax.jit(fun, compiler_options=compile_options(profile), **kwargs)


def lazy_jit(fun=None, *, profile: str = "fit", **kwargs):
    """Decorator form of `jit` for module-level functions: the jitted function is built at the
    first call (the backend is known only then); `.jitted()` returns it."""
    if fun is None:
        return functools.partial(lazy_jit, profile=profile, **kwargs)

    @functools.cache
    def jitted():
        return jit(fun, profile, **kwargs)

    @functools.wraps(fun)
    def call(*args, **kw):
        return jitted()(*args, **kw)

    call.jitted = jitted
    return call
