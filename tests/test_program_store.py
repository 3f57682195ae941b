"""Compiled fit programs kept on disk between processes (moestat/program_store.py)."""

from __future__ import annotations

import jax
import numpy as np

from moestat import program_store
from moestat.fit import fit_random
from moestat.model import MixtureOfExperts


def _fit(cache, rows=256):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, rows)
    y = np.where(rng.uniform(size=rows) < 0.5, 2 * x, -x) + 0.1 * rng.normal(size=rows)
    model = MixtureOfExperts.create("softmax", "linear", "gaussian", n_experts=2, n_features=1)
    result, objectives = fit_random(model, x[:, None], y, jax.random.PRNGKey(1), 2, explore=2,
                                    program_cache=cache)
    return float(result.loglik), np.asarray(objectives)


def test_stored_program_gives_the_traced_programs_fit_and_survives_damage(tmp_path):
    """Traced (no store), compiled and stored, loaded from disk as a fresh process would, and
    compiled again over a damaged entry: the same fit every time (the same program compiled
    with the same options; 1e-12 allows for nothing but rounding)."""
    direct = _fit(None)
    cache_setting = jax.config.jax_enable_compilation_cache
    stored = _fit(str(tmp_path))
    assert jax.config.jax_enable_compilation_cache == cache_setting  # back as it was
    entries = sorted((tmp_path / "programs").glob("*" + program_store.SUFFIX))
    assert len(entries) == 2  # drawn starts; runs (short and to convergence): prepared as called
    program_store._LOADED.clear()  # as a fresh process: loaded from disk
    loaded = _fit(str(tmp_path))
    entries[0].write_bytes(b"damaged")
    program_store._LOADED.clear()
    rebuilt = _fit(str(tmp_path))
    assert entries[0].read_bytes() != b"damaged"
    for other in (stored, loaded, rebuilt):
        np.testing.assert_allclose(other[0], direct[0], rtol=1e-12)
        np.testing.assert_allclose(other[1], direct[1], rtol=1e-12)


def test_short_and_full_runs_share_one_program_and_give_the_one_program_fit(tmp_path):
    """Above compiling.TABLE_ROWS rows too, the stored fit is two programs — the runs'
    program serves the short runs and the runs to convergence through its traced iteration
    limit — and gives the fit of the single traced program (`_random_fits`, where both phases
    are compiled: rounding only), stored and loaded alike."""
    from moestat.compiling import TABLE_ROWS

    direct = _fit(None, TABLE_ROWS + 1)
    program_store._LOADED.clear()
    stored = _fit(str(tmp_path), TABLE_ROWS + 1)
    assert len(list((tmp_path / "programs").glob("*" + program_store.SUFFIX))) == 2
    program_store._LOADED.clear()
    loaded = _fit(str(tmp_path), TABLE_ROWS + 1)
    assert loaded[0] == stored[0] and np.array_equal(loaded[1], stored[1])
    np.testing.assert_allclose(stored[0], direct[0], rtol=1e-12)
    np.testing.assert_allclose(stored[1], direct[1], rtol=1e-12)


def test_the_key_names_the_profile_and_the_shapes():
    """Two profiles or two shapes of the same program are two entries."""
    x = jax.numpy.zeros((4, 1))
    key = program_store._key
    keys = {key("p", (1,), (x,), "fit"), key("p", (1,), (x,), "table"),
            key("p", (1,), (jax.numpy.zeros((8, 1)),), "fit")}
    assert len(keys) == 3


def test_a_fresh_process_runs_the_stored_program(tmp_path):
    """`moestat fit` in fresh processes sharing a cache: the second loads the stored programs
    (their files untouched) and gives the same fit. A loaded program calls jaxlib's LAPACK
    kernels without a lowering having loaded them first (the case `_initialize_kernels`
    exists for: the process crashed). Then the store is emptied: compiled and stored again,
    then loaded, the same fit."""
    import json
    import os
    import subprocess
    import sys

    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, 120)
    y = np.where(rng.uniform(size=120) < 0.5, 2 * x, -x) + 0.1 * rng.normal(size=120)
    table = tmp_path / "t.csv"
    table.write_text("x,y\n" + "\n".join(f"{a:.17g},{b:.17g}" for a, b in zip(x, y, strict=True)))
    env = {**os.environ, "MOESTAT_CACHE_DIR": str(tmp_path / "cache")}
    cmd = [sys.executable, "-m", "moestat", "fit", str(table), "--target", "y", "--experts",
           "2", "--n-init", "3", "--json"]

    def run():
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr[-500:]
        return json.loads(done.stdout)

    first = run()
    stored = {p: p.stat().st_mtime_ns for p in (tmp_path / "cache" / "programs").iterdir()}
    assert len(stored) == 3  # the fit's two programs and its standard errors' (prepared with
    # the shapes they are called with: one entry each)
    second = run()
    assert {p: p.stat().st_mtime_ns for p in stored} == stored
    for path in stored:
        path.unlink()
    run()  # compiled and stored again
    fourth = run()
    for other in (second, fourth):
        assert other["loglik"] == first["loglik"]
        assert other["standard_errors"] == first["standard_errors"]


def test_prepared_programs_compile_on_worker_threads_and_a_call_waits_for_its_own(tmp_path):
    """`prepare` returns before its program has compiled (the compile runs on a worker
    thread, here held back until released) and the next program is traced meanwhile;
    `call_stored` waits for the compile and runs it."""
    import threading

    release, threads = threading.Event(), []
    compile_and_store = program_store._compile_and_store

    def held(path, lowered):
        threads.append(threading.current_thread().name)
        release.wait(60)
        return compile_and_store(path, lowered)

    x = jax.numpy.arange(3.0)
    program_store._LOADED.clear()
    try:
        program_store._compile_and_store = held
        program_store.prepare(str(tmp_path), "double", (), lambda: lambda a: 2 * a, x)
        program_store.prepare(str(tmp_path), "square", (), lambda: lambda a: a * a, x)
        assert not list((tmp_path / "programs").glob("*" + program_store.SUFFIX))  # held
        release.set()
        doubled = program_store.call_stored(str(tmp_path), "double", (),
                                            lambda: lambda a: 2 * a, x)
        squared = program_store.call_stored(str(tmp_path), "square", (),
                                            lambda: lambda a: a * a, x)
    finally:
        program_store._compile_and_store = compile_and_store
        release.set()
    np.testing.assert_array_equal(doubled, [0.0, 2.0, 4.0])
    np.testing.assert_array_equal(squared, [0.0, 1.0, 4.0])
    assert len(threads) == 2 and all(t.startswith("moestat-compile") for t in threads)
    assert len(list((tmp_path / "programs").glob("*" + program_store.SUFFIX))) == 2


def test_without_a_directory_a_program_is_traced_once_per_name_static_and_profile():
    """No directory (a library user's process): the first call traces, later calls with the
    same name, static arguments and shapes reuse the jitted function (a standard-error
    request on each new fit of a table used to trace and compile again, ~0.2 s)."""
    traces = []

    def build():
        def double(a):
            traces.append(1)
            return 2 * a
        return double

    x = jax.numpy.arange(3.0)
    for _ in range(3):
        out = program_store.call_stored(None, "double_untraced", ("s",), build, x)
    np.testing.assert_array_equal(out, [0.0, 2.0, 4.0])
    assert len(traces) == 1
    program_store.call_stored(None, "double_untraced", ("other",), build, x)
    assert len(traces) == 2


def test_a_cache_that_cannot_be_written_still_fits(tmp_path):
    """The store's directory cannot be created (a file stands in its place): the program is
    compiled, the fit is the traced program's, and nothing is written."""
    (tmp_path / "programs").write_text("not a directory")
    program_store._LOADED.clear()
    direct = _fit(None)
    blocked = _fit(str(tmp_path))
    np.testing.assert_allclose(blocked[0], direct[0], rtol=1e-12)
    assert (tmp_path / "programs").read_text() == "not a directory"


def test_a_quick_exit_flushes_output_and_waits_for_the_compiles(tmp_path):
    """`process_exit.exit_process` after `request_quick_exit` (what `moestat fit` does):
    the exit code kept, stdout flushed, and work handed to the compile threads finished
    (here a job that writes a file after 0.5 s) before the process is gone."""
    import subprocess
    import sys

    done = tmp_path / "written"
    code = ("import time\n"
            "from moestat import process_exit, program_store\n"
            f"program_store._compiler().submit(lambda: (time.sleep(0.5), "
            f"open({str(done)!r}, 'w').write('ok')))\n"
            "process_exit.request_quick_exit()\n"
            "print('result', end='')\n"
            "process_exit.exit_process(3)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       check=False)
    assert r.returncode == 3 and r.stdout == "result", r.stderr[-300:]
    assert done.read_text() == "ok"


def test_a_traced_iteration_limit_runs_like_a_smaller_max_iter():
    """One jitted fit with the iteration limit as an argument: limit 3 stops where max_iter = 3
    stops (same parameters, n_iter 3, history NaN after it), limit = max_iter is the plain
    fit."""
    from moestat.fit import FitOptions, fit
    from moestat.fit.api import _fit_one, default_bounds

    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 1, 300)
    y = np.where(rng.uniform(size=300) < 0.5, 2 * x, -x) + 0.1 * rng.normal(size=300)
    model = MixtureOfExperts.create("softmax", "linear", "gaussian", n_experts=2, n_features=1)
    X, w = jax.numpy.asarray(x[:, None]), jax.numpy.ones(300)
    start = model.zeros()._replace(expert=model.zeros().expert._replace(
        a=jax.numpy.asarray([[1.0], [-0.5]]), b=jax.numpy.asarray([0.1, 0.0])))
    options = FitOptions(max_iter=50)
    limited = jax.jit(lambda s, limit: _fit_one(model, "em", options, X, y, w, s,
                                                default_bounds(model, y, w), limit))
    for limit, max_iter in ((3, 3), (50, 50)):
        got = limited(start, np.asarray(limit))
        want = fit(model, x[:, None], y, start, options=FitOptions(max_iter=max_iter))
        assert int(got.n_iter) == int(want.n_iter) and got.history.shape == (50,)
        for a, b in zip(jax.tree_util.tree_leaves(got.params), jax.tree_util.tree_leaves(
                want.params), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
        assert np.all(np.isnan(np.asarray(got.history)[int(got.n_iter):]))
    assert int(limited(start, np.asarray(3)).n_iter) == 3
