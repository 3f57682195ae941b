"""Experiment engine: configs, resumable in-process sweeps, reports (real subprocesses)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest

from truths import TWO_EXPERTS

ROOT = Path(__file__).resolve().parents[1]


TINY = """
name = "tiny"
seed = 3
replicates = 4
block = 2
metrics = ["D1", "hellinger", "a"]
n = [300, 600, 1200, 2400]

[[settings]]
name = "exact"
gate = "softmax"
expert = "linear"
""" + TWO_EXPERTS + """
[theory]
D1 = -0.5
"""


def moestat(*args, **kw):
    return subprocess.run([sys.executable, "-m", "moestat", *map(str, args)],
                          capture_output=True, text=True, timeout=600, **kw)


@pytest.fixture
def tiny(tmp_path):
    p = tmp_path / "tiny.toml"
    p.write_text(TINY)
    return p


def test_run_report_status(reference, tmp_path):
    out = reference  # made by `moestat run tiny.toml --out DIR`
    rep = json.loads(moestat("report", out, "--json").stdout)
    assert rep["experiment"] == "tiny" and rep["complete"]
    assert {(x["setting"], x["metric"]) for x in rep["rates"]} == {
        ("exact", "D1"), ("exact", "hellinger"), ("exact", "a")}
    d1 = next(x for x in rep["rates"] if x["metric"] == "D1")
    assert d1["theory"] == -0.5 and d1["paper"] is None and d1["n_fits"] == 16
    assert d1["ci95"][0] < d1["slope"] < d1["ci95"][1] and d1["slope"] < 0
    # the median's slope has its own bootstrap interval (rates.fit_rate, statistic="median")
    assert d1["median_ci95"][0] < d1["median_slope"] < d1["median_ci95"][1]
    assert json.loads((out / "summary.json").read_text())["rates"] == rep["rates"]
    assert len(list((out / "cells").glob("*.parquet"))) == 8
    assert "8/8 cells" in moestat("status", out).stdout
    # the figure: written by `run`, rebuilt by `plot`; log-log axes, one series per metric
    assert (out / "rates.png").stat().st_size > 10_000
    r = moestat("plot", out, "-o", tmp_path / "fig.svg")
    assert r.returncode == 0 and (tmp_path / "fig.svg").read_text().startswith("<?xml")
    from matplotlib.container import ErrorbarContainer

    from moestat.experiments.plot import rate_figure

    fig = rate_figure(out)
    (ax,) = fig.axes
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    series = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert [c.get_label().split(":")[0] for c in series] == ["D1", "hellinger", "a"]
    # `run` draws from its summary (2000 bootstrap draws), `plot` from its own report (1000):
    # the same lines and labels (the figure uses no bootstrap quantity)
    from_summary = rate_figure(out, summary=json.loads((out / "summary.json").read_text()))
    for a, b in zip(ax.get_lines(), from_summary.axes[0].get_lines(), strict=True):
        np.testing.assert_array_equal(a.get_xydata(), b.get_xydata())
    assert [c.get_label() for c in series] == [
        c.get_label() for c in from_summary.axes[0].containers
        if isinstance(c, ErrorbarContainer)]
    assert moestat("plot", out, "-o", tmp_path / "fig.txt").returncode == 2


def _run_until_cells(tiny, out, k, *extra):
    """`moestat run` in a subprocess, returned once k cell files are written."""
    proc = subprocess.Popen([sys.executable, "-m", "moestat", "run", str(tiny), "--out",
                             str(out), *extra], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and len(list((out / "cells").glob("*.parquet"))) < k:
        time.sleep(0.05)
    return proc


def test_ctrl_c_stops_after_the_cell_exit_130_and_a_rerun_resumes(reference, tiny, tmp_path):
    out = tmp_path / "interrupted"
    proc = _run_until_cells(tiny, out, 2)
    os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert "interrupt: finishing the cells at hand" in err
    assert "interrupted: finished cells are kept; run the same command again to resume" in err
    written = len(list((out / "cells").glob("*.parquet")))
    assert 2 <= written < 8
    assert moestat("run", tiny, "--out", out).returncode == 0
    assert _table(out) == _table(reference)  # the resumed rows are the reference's


def test_ctrl_c_in_a_pool_sweep_writes_the_cells_at_hand_and_starts_no_other(
        reference, tiny, tmp_path):
    """Ctrl-C while two workers compute: both cells finish and are written (none computed and
    thrown away, none started after it), the sweep raises KeyboardInterrupt (exit 130 in the
    CLI), and a rerun completes to the reference's rows."""
    from moestat import interrupts
    from moestat.experiments import runner
    from moestat.experiments.backends import ProcessPool

    out = tmp_path / "pool_interrupted"
    config = runner.resolve(tiny)
    runner.prepare_out(config, out, resume=True)
    finished = []

    def ctrl_c_after_the_first(done, total):
        finished.append(done)
        interrupts.request()  # what the first Ctrl-C does

    try:
        with pytest.raises(KeyboardInterrupt):
            runner.run_sweep(config, out, ProcessPool(2), on_cell=ctrl_c_after_the_first)
    finally:  # clear the request, and give pytest its own Ctrl-C back
        pytest_handler = signal.getsignal(signal.SIGINT)
        interrupts.stop_between_cells()
        signal.signal(signal.SIGINT, pytest_handler)
    assert finished == [1, 2]  # the worker's cell at hand, then the other's; no third
    assert len(list((out / "cells").glob("*.parquet"))) == 2
    assert runner.run_sweep(config, out) == 6
    assert _table(out) == _table(reference)


def test_workers_die_with_their_parent(tiny, tmp_path):
    """kill -9 of `moestat run --workers 2`: its worker processes exit within seconds (their
    watchdog, backends.worker_setup) instead of computing for nobody."""
    proc = _run_until_cells(tiny, tmp_path / "orphans", 1, "--workers", "2")
    children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True,
                              text=True).stdout.split()
    assert children  # the pool's workers (and multiprocessing's resource tracker)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 20
    alive = children
    while alive and time.time() < deadline:
        time.sleep(0.2)
        alive = [c for c in alive if _running(c)]
    assert not alive, alive


def test_a_killed_worker_loses_no_cell(reference, tiny, tmp_path):
    """kill -9 of one pool worker mid-sweep (the OOM killer's way): the pool is rebuilt, the
    cells it was computing run again, and the sweep completes to the reference's rows."""
    out = tmp_path / "worker_killed"
    proc = _run_until_cells(tiny, out, 1, "--workers", "2")
    workers = [pid for pid in subprocess.run(["pgrep", "-P", str(proc.pid)],
                                             capture_output=True, text=True).stdout.split()
               if "spawn_main" in Path(f"/proc/{pid}/cmdline").read_text()]
    assert len(workers) == 2
    os.kill(int(workers[0]), signal.SIGKILL)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert _table(out) == _table(reference)


def _running(pid: str) -> bool:
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


def test_sigkill_then_resume_gives_the_same_report(reference, tiny, tmp_path):
    ref = reference
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "moestat", "run", str(tiny), "--out",
                             str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline:  # kill once some, but not all, cells are written
        if len(list((out / "cells").glob("*.parquet"))) >= 2:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    written = len(list((out / "cells").glob("*.parquet")))
    assert 2 <= written < 8, written
    status = moestat("status", out).stdout
    assert "incomplete" in status
    assert moestat("run", tiny, "--out", out).returncode == 0
    a = json.loads(moestat("report", ref, "--json").stdout)
    b = json.loads(moestat("report", out, "--json").stdout)
    assert a == b
    assert not [p for p in (out / "cells").iterdir() if p.suffix != ".parquet"]


def test_damaged_cells_are_detected_moved_aside_and_recomputed(reference, tiny, tmp_path):
    """A truncated cell file and one whose values changed on disk (checksum mismatch) are
    never used: `report` refuses with one line; `run` moves both to corrupt/, recomputes
    them and the report equals the undisturbed run's."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = tmp_path / "run"
    shutil.copytree(reference, out)
    files = sorted((out / "cells").glob("*.parquet"))
    files[0].write_bytes(files[0].read_bytes()[:200])  # truncated
    t = pq.read_table(files[1])  # rewritten with one value changed, old checksum kept
    i = t.schema.get_field_index("metric.D1")
    changed = pa.array([v * 1.01 for v in t.column(i).to_pylist()])
    pq.write_table(t.set_column(i, "metric.D1", changed), files[1])
    r = moestat("report", out, "--json")
    assert r.returncode == 2 and "damaged cell file" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = moestat("run", tiny, "--out", out)
    assert r.returncode == 0 and "moved 2 damaged cell file(s)" in r.stdout
    assert sorted(p.name for p in (out / "corrupt").iterdir()) == sorted(
        [files[0].name, files[1].name])
    a = json.loads(moestat("report", reference, "--json").stdout)
    b = json.loads(moestat("report", out, "--json").stdout)
    assert a == b


def test_partial_run_counts_pending_replicates_as_pending_not_failed(reference, tmp_path):
    """A cell still to run (replicates 2-3 at one n) leaves holes; the report of the partial
    run counts only the fits that exist and none of them failed."""
    from moestat.experiments.runner import report

    out = tmp_path / "run"
    shutil.copytree(reference, out)
    sorted((out / "cells").glob("*.parquet"))[0].unlink()
    rep = report(out, n_boot=1000)
    assert not rep["complete"]
    d1 = next(x for x in rep["rates"] if x["metric"] == "D1")
    assert d1["n_fits"] == 14 and d1["n_failed"] == 0


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(5))
def test_sigkill_at_a_random_moment_then_resume_is_identical(reference, tiny, tmp_path, trial):
    """SIGKILL of `moestat run` at a seeded random moment, 0.5-25 s after start (the moment
    is not steered to a phase of the run), possibly twice, then resume: the rows are
    bit-identical to the undisturbed run, nothing is left half-written."""
    rng = np.random.default_rng(trial)
    out = tmp_path / "killed"
    for _ in range(int(rng.integers(1, 3))):
        proc = subprocess.Popen([sys.executable, "-m", "moestat", "run", str(tiny), "--out",
                                 str(out)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(float(rng.uniform(0.5, 25.0)))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    r = moestat("run", tiny, "--out", out)
    assert r.returncode == 0, r.stderr
    assert_same_results(reference, out)
    assert not [p for p in (out / "cells").iterdir() if p.suffix != ".parquet"]
    assert not (out / "corrupt").exists()


def test_changed_config_in_same_directory_is_refused(reference, tiny, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    tiny.write_text(TINY.replace("seed = 3", "seed = 4"))
    r = moestat("run", tiny, "--out", out)
    assert r.returncode == 2 and "different config" in r.stderr


BAD = [
    ("unknown key", TINY.replace('name = "tiny"', 'name = "tiny"\ncolour = 1'),
     "colour: unknown key"),
    ("wrong type", TINY.replace("replicates = 4", 'replicates = "four"'), "replicates"),
    ("empty grid", TINY.replace("n = [300, 600, 1200, 2400]", "n = []"), "n grid is empty"),
    ("replicates < 1", TINY.replace("replicates = 4", "replicates = 0"), "replicates"),
    ("not TOML", "name = [unclosed", "not valid TOML"),
    ("unknown metric", TINY.replace('"D1", ', '"D9", '), "metrics ['D9']"),
    ("unknown gate", TINY.replace('gate = "softmax"', 'gate = "nope"'), "unknown gate"),
]


@pytest.mark.parametrize("label,text,message", BAD, ids=[b[0] for b in BAD])
def test_bad_configs_exit_2_with_one_line(tmp_path, label, text, message):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    r = moestat("run", p, "--out", tmp_path / "o")
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr and message in lines[0], r.stderr


def test_missing_config_file(tmp_path):
    r = moestat("run", tmp_path / "absent.toml")
    assert r.returncode == 2 and "config file not found" in r.stderr


def test_unknown_preset(tiny, tmp_path):
    r = moestat("run", tiny, "--preset", "quick", "--out", tmp_path / "o")
    assert r.returncode == 2 and "unknown preset 'quick'" in r.stderr


def test_shipped_configs_validate():
    from moestat.attention import experiment as classification
    from moestat.experiments.config import CLASSIFICATION_KIND, read_toml
    from moestat.experiments.runner import resolve

    kinds = []
    for path in sorted((ROOT / "experiments").glob("*.toml")):
        kind = read_toml(path).get("kind")
        kinds.append(kind)
        for preset in (None, "quick", "full"):
            (classification.resolve if kind == CLASSIFICATION_KIND else resolve)(path, preset)
    assert kinds.count(CLASSIFICATION_KIND) == 2  # attention_digits, attention_breast_cancer


def _table(out):
    from moestat.experiments.store import read_rows

    t = read_rows(out).to_pydict()
    order = sorted(range(len(t["n"])), key=lambda i: (t["setting"][i], t["n"][i],
                                                      t["replicate"][i]))
    skip = {"fit_seconds"}
    return {k: [v[i] for i in order] for k, v in t.items() if k not in skip}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The tiny sweep run in-process once: what every other backend must reproduce."""
    d = tmp_path_factory.mktemp("ref")
    (d / "tiny.toml").write_text(TINY)
    r = moestat("run", d / "tiny.toml", "--out", d / "inproc")
    assert r.returncode == 0, r.stderr
    return d / "inproc"


def assert_same_results(a, b):
    assert _table(a) == _table(b)  # bit-identical metrics, objectives, iterations, flags
    assert json.loads(moestat("report", a, "--json").stdout) == json.loads(
        moestat("report", b, "--json").stdout)


def test_process_pool_gives_identical_results(reference, tiny, tmp_path):
    b = tmp_path / "pool"
    r = moestat("run", tiny, "--out", b, "--workers", "2")
    assert r.returncode == 0, r.stderr
    assert_same_results(reference, b)


@pytest.fixture
def dask_cluster():
    """A real Dask cluster on 127.0.0.1: scheduler plus 2 single-threaded worker processes
    (each under a nanny that restarts it if it dies)."""
    import logging

    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None, silence_logs=logging.ERROR) as cluster, \
            Client(cluster) as client:
        yield cluster.scheduler_address, client


@pytest.mark.slow  # ~17 s: a Dask LocalCluster; run with -m slow
def test_dask_cluster_gives_identical_results(reference, dask_cluster, tiny, tmp_path):
    address, client = dask_cluster
    assert address.startswith("tcp://127.0.0.1:") and len(client.run(os.getpid)) == 2
    b = tmp_path / "dask"
    r = moestat("run", tiny, "--out", b, "--scheduler", address)
    assert r.returncode == 0, r.stderr
    assert_same_results(reference, b)


@pytest.mark.slow
def test_dask_worker_killed_mid_sweep_changes_nothing(reference, dask_cluster, tiny, tmp_path):
    address, client = dask_cluster
    out = tmp_path / "dask"
    proc = subprocess.Popen([sys.executable, "-m", "moestat", "run", str(tiny), "--out",
                             str(out), "--scheduler", address],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline:  # kill a busy worker once some, not all, cells are written
        if len(list((out / "cells").glob("*.parquet"))) >= 1:
            break
        time.sleep(0.05)
    busy = [w for w, tasks in client.processing().items() if tasks]
    pids = client.run(os.getpid)
    victim = pids[busy[0]] if busy else next(iter(pids.values()))
    os.kill(victim, signal.SIGKILL)
    written = len(list((out / "cells").glob("*.parquet")))
    assert 1 <= written < 8, written
    assert proc.wait(timeout=600) == 0, proc.stderr.read()
    assert victim not in client.run(os.getpid).values()  # the nanny started a new worker
    assert_same_results(reference, out)


def test_bad_scheduler_address_exits_2(tiny, tmp_path):
    r = moestat("run", tiny, "--out", tmp_path / "o", "--scheduler", "127.0.0.1:8786")
    assert r.returncode == 2 and "--scheduler must be 'local' or an address" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def _no_space(path=None):
    import errno

    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)


@pytest.mark.parametrize("fail_at,how", [(2, "fsync"),
                                         pytest.param(5, "fsync", marks=pytest.mark.slow),
                                         (5, "partial write"),
                                         pytest.param(10, "fsync", marks=pytest.mark.slow)],
                         ids=["first-cell", "mid-sweep", "mid-sweep-partial", "summary"])
def test_full_disk_loses_nothing_and_resumes_identically(reference, tiny, tmp_path, capsys,
                                                         monkeypatch, fail_at, how):
    """A full disk, simulated by ENOSPC on the `fail_at`-th atomic write of a run (1: the
    resolved config, 2..9: the 8 cells, 10: summary.json) — either from fsync (what a real
    full disk reports for buffered data) or from the writer after half the bytes. `moestat
    run` exits 1 with one line naming the cause and the file; no temporary is left; every cell
    already written is complete (checksum); a second run, disk free again, resumes and gives
    rows and a report identical to the undisturbed run."""
    import pyarrow.parquet as pq

    from moestat import cli, files
    from moestat.experiments.store import cells_dir, read_cell

    count = {"fsync": 0}
    real_fsync, real_write = os.fsync, pq.write_table

    def fsync(fd):
        count["fsync"] += 1
        if how == "fsync" and count["fsync"] == fail_at:
            raise _no_space()
        return real_fsync(fd)

    def write_table(table, where, **kw):
        if how == "partial write" and count["fsync"] + 1 == fail_at:
            real_write(table, where, **kw)
            size = os.path.getsize(where)
            with open(where, "r+b") as f:
                f.truncate(size // 2)
            raise _no_space(str(where))
        return real_write(table, where, **kw)

    monkeypatch.setattr(files.os, "fsync", fsync)
    monkeypatch.setattr(pq, "write_table", write_table)
    out = tmp_path / "run"
    code = cli.main(["run", str(tiny), "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "No space left on device" in err[0], err
    assert str(out) in err[0] and "Traceback" not in err[0]
    assert not list(out.rglob("*.tmp")) and not (out / "summary.json").exists()
    written = sorted(cells_dir(out).glob("*.parquet"))
    assert len(written) == min(fail_at - 2, 8)
    assert all(read_cell(p) is not None for p in written)

    monkeypatch.setattr(files.os, "fsync", real_fsync)
    monkeypatch.setattr(pq, "write_table", real_write)
    assert cli.main(["run", str(tiny), "--out", str(out)]) == 0
    assert_same_results(reference, out)


MIXED = """
name = "mixed"
seed = 1
replicates = 3
block = 3
local_window = 2
n = [400, 800, 1600]
metrics = ["D1", "hellinger"]

[[settings]]
name = "dense"
""" + TWO_EXPERTS + """
[[settings]]
name = "sparse_over"
gate = "topk_softmax:3"
truth_gate = "topk_softmax:2"
n_experts = 4
n_features = 1
x = { dist = "uniform", low = -1.0, high = 1.0 }
init = { kind = "near_truth", scale = 0.1, assignment = [0, 1, 2, 2] }
metrics = ["D2", "b@overfitted"]
[settings.truth]
"gate.beta1" = [[-3.0], [3.0], [0.0]]
"gate.beta0" = [-2.0, -2.0, 0.0]
"expert.a" = [[1.0], [-1.0], [0.0]]
"expert.b" = [-2.0, -2.0, 2.0]
"noise.var" = [0.25, 0.25, 0.25]
"""


def test_per_setting_metrics_truth_gate_and_local_slopes(tmp_path):
    """Settings with their own metrics share one results table (missing columns read as
    NaN); `truth_gate` makes the data come from a K = 2 top-K truth while K = 3 is fitted; the
    report carries local slopes (window `local_window`) and far-out counts."""
    from moestat.experiments import runner
    from moestat.experiments.settings import build
    from moestat.experiments.store import read_rows

    path = tmp_path / "mixed.toml"
    path.write_text(MIXED)
    config = runner.resolve(path)
    assert config.metrics_for("dense") == ["D1", "hellinger"]
    assert config.all_metrics() == ["D1", "hellinger", "D2", "b@overfitted"]
    built = build(config.settings[1])
    assert built.truth_model.gate.k_active == 2 and built.fit_model.gate.k_active == 3
    out = tmp_path / "run"
    runner.prepare_out(config, out, True)
    runner.run_sweep(config, out)
    cols = {k: (np.asarray(v, float) if k.startswith("metric.") else v)
            for k, v in read_rows(out).to_pydict().items()}  # null (other setting) -> NaN
    dense = [i for i, s in enumerate(cols["setting"]) if s == "dense"]
    assert all(np.isnan(cols["metric.D2"][i]) for i in dense)
    assert all(np.isfinite(cols["metric.D1"][i]) for i in dense)
    rep = runner.report(out)
    assert {(r["setting"], r["metric"]) for r in rep["rates"]} == {
        ("dense", "D1"), ("dense", "hellinger"), ("sparse_over", "D2"),
        ("sparse_over", "b@overfitted")}
    for r in rep["rates"]:
        loc = r["local_slopes"]
        assert len(loc["n"]) == 2 and len(loc["slope"]) == 2  # 3 n values, windows of 2
        assert loc["n"][0] == pytest.approx((400 * 800) ** 0.5)
        assert 0 <= r["n_far_out"] <= r["n_fits"]
    hell = [v for v, s in zip(cols["metric.hellinger"], cols["setting"], strict=True)
            if s == "sparse_over"]
    assert len(hell) == 9 and all(np.isnan(hell))  # not a metric of that setting


def test_truth_gate_must_have_the_fitted_gate_parameters(tmp_path):
    bad = MIXED.replace('truth_gate = "topk_softmax:2"', 'truth_gate = "temperature_softmax"')
    (tmp_path / "bad.toml").write_text(bad)
    r = moestat("run", tmp_path / "bad.toml", "--out", tmp_path / "o")
    assert r.returncode == 2 and "truth_gate" in r.stderr and len(r.stderr.splitlines()) == 1


def test_a_bad_memory_budget_is_refused_before_any_cell(tiny, tmp_path):
    r = moestat("run", tiny, "--out", tmp_path / "o", env={**os.environ,
                                                          "MOESTAT_MEMORY_GB": "lots"})
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "error: MOESTAT_MEMORY_GB must be a number, got 'lots'"]
    assert not list((tmp_path / "o" / "cells").glob("*.parquet"))


def test_compare_holds_runs_to_the_same_rows(reference, tmp_path):
    """`moestat compare` finds a run equal to itself, and a copy with one metric value changed
    (rewritten with a valid checksum) different by exactly that change; with --setting /
    --metric it pairs the replicates per n (--setting A:B: setting A of run A with setting B
    of run B; a setting B that has no fits is refused in one line)."""
    import shutil

    from moestat.experiments import compare
    from moestat.experiments.store import read_cell, write_cell

    same = json.loads(moestat("compare", reference, reference, "--json").stdout)
    assert same["same_keys"] and all(same["equal"].values())
    assert all(v == 0.0 for v in same["largest_relative_difference"].values())
    changed = tmp_path / "changed"
    shutil.copytree(reference, changed)
    cell = sorted((changed / "cells").glob("*.parquet"))[0]
    rows = read_cell(cell).to_pydict()
    rows["metric.D1"][0] *= 1.5
    write_cell(changed, cell.stem, rows)
    diff = compare.same_rows(reference, changed)
    assert diff["same_keys"] and all(diff["equal"].values())
    assert diff["largest_relative_difference"]["metric.D1"] == pytest.approx(1 / 3)
    assert diff["largest_relative_difference"]["metric.a"] == 0.0
    paired = compare.paired(reference, changed, "exact", "D1")
    assert [p["n"] for p in paired] == [300, 600, 1200, 2400]
    assert all(p["replicates"] == 4 and p["b_higher_objective"] == 0 for p in paired)
    assert sum(p["mean_a"] != p["mean_b"] for p in paired) == 1
    assert all(p["median_objective_b_minus_a"] == 0.0 for p in paired)
    assert all(p["median_iterations_a"] == p["median_iterations_b"] >= 1
               and p["converged_a"] == p["converged_b"] and p["fit_seconds_a"] > 0
               for p in paired)
    assert compare.paired(reference, changed, "exact", "D1", "exact") == paired  # A:B form
    two = json.loads(moestat("compare", reference, reference, "--setting", "exact:exact",
                             "--metric", "D1", "--json").stdout)
    assert len(two["paired"]) == 4
    for args in (["--setting", "exact"], ["--setting", "exact:nope", "--metric", "D1"]):
        bad = moestat("compare", reference, reference, *args)
        assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


def test_report_per_n_shows_the_statistics_behind_a_rate(reference):
    """--per-n: one row per n with the fits, and the mean slope over all fits equal to the
    report's slope (the same OLS on the same means); a bad SETTING:METRIC is refused."""
    from moestat.errors import InputError
    from moestat.experiments.runner import per_n, report

    slope = next(r["slope"] for r in report(reference)["rates"] if r["metric"] == "D1")
    per = per_n(reference, "exact", "D1")
    assert [r["n"] for r in per["per_n"]] == [300, 600, 1200, 2400]
    assert all(r["fits"] == 4 and r["mean"] > 0 and r["median"] > 0 for r in per["per_n"])
    assert per["mean_slope"]["all_fits"]["slope"] == pytest.approx(slope, rel=1e-12)
    for setting, metric in (("exact", "nope"), ("nope", "D1")):
        with pytest.raises(InputError):
            per_n(reference, setting, metric)
    r = moestat("report", reference, "--per-n", "exact")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1


def test_shipped_experiments_run_by_name(tmp_path, monkeypatch):
    """A shipped config is found by its name from any directory; a path is used as given; an
    unknown name is refused in one line naming the shipped ones."""
    from moestat.errors import InputError
    from moestat.shipped import config_path, shipped_experiments

    monkeypatch.chdir(tmp_path)
    names = shipped_experiments()
    assert "contaminated_distinguishable" in names and len(names) >= 10
    assert config_path("contaminated_distinguishable").name == "contaminated_distinguishable.toml"
    (tmp_path / "mine.toml").write_text(TINY)
    assert config_path("mine.toml").resolve() == tmp_path / "mine.toml"
    with pytest.raises(InputError, match="no shipped experiment 'nope'; shipped: "):
        config_path("nope")
    with pytest.raises(InputError, match="config file not found"):
        config_path("missing.toml")


def test_a_failing_cell_is_recorded_retried_by_a_rerun_and_foreign_files_set_aside(
        reference, tiny, tmp_path, monkeypatch):
    """One cell raising every attempt (a transient fault) is written as failed — counted in
    status, report and the figure's PARTIAL mark — and a plain rerun computes it (saying so)
    to the reference's result; a cell file copied in from another run is moved to foreign/
    and never counted."""
    from moestat.experiments import backends, runner

    out = tmp_path / "faulty"
    config = runner.resolve(tiny)
    runner.prepare_out(config, out, resume=True)
    real = backends.run_cell

    def flaky(cfg, cell):
        if cell.n == 600 and cell.start == 0:
            raise MemoryError("transient")
        return real(cfg, cell)

    monkeypatch.setattr(backends, "run_cell", flaky)
    runner.run_sweep(config, out)
    st = runner.status(out)
    assert st["cells_failed"] == 1 and st["cells_done"] == 7 and not st["complete"]
    d1 = next(x for x in runner.report(out)["rates"] if x["metric"] == "D1")
    assert d1["n_failed"] == 2 and d1["n_fits"] == 16  # the failed rows are counted
    assert "1 cell(s) failed (a rerun retries them)" in moestat("status", out).stdout
    rep = json.loads(moestat("report", out, "--json").stdout)
    assert rep["cells_failed"] == 1 and not rep["complete"]
    assert "PARTIAL: 7/8 cells, 1 failed" in moestat("report", out).stdout.replace("\n", "")
    from moestat.experiments.plot import rate_figure

    assert rate_figure(out)._suptitle.get_text() == "PARTIAL RUN: 7/8 cells, 1 failed"
    monkeypatch.setattr(backends, "run_cell", real)
    shutil.copy(next((reference / "cells").glob("*.parquet")),
                out / "cells" / ("0" * 24 + ".parquet"))  # another config's cell
    notes = []
    assert runner.run_sweep(config, out, on_note=notes.append) == 1
    assert notes == [f"moved 1 cell file(s) of another config to {out}/foreign/",
                     "retrying 1 cell(s) that failed before"]
    assert (out / "foreign" / ("0" * 24 + ".parquet")).exists()
    assert not list((out / "cells").glob("*.failed.parquet"))
    assert runner.status(out)["complete"] and _table(out) == _table(reference)


def test_split_counts_per_n():
    """The report's stuck / escaped table: per setting with `split_cells` and per n, fits with
    a count >= 1 are stuck, 0 escaped, a missing fit is neither; other metrics are ignored."""
    import numpy as np

    from moestat.experiments.metric_runs import MetricRuns
    from moestat.experiments.runner import split_counts

    ns = np.array([100, 1000])
    counts = np.array([[1.0, 1.0, 0.0], [0.0, np.nan, 2.0]])
    ones = np.ones_like(counts, bool)
    runs = {("s", "split_cells"): MetricRuns(ns, counts, counts * np.nan, ones, ~ones, ones),
            ("s", "hellinger"): MetricRuns(ns, counts, counts, ones, ~ones, ones)}
    assert split_counts(runs) == [
        {"setting": "s", "n": 100, "fits": 3, "stuck": 2, "escaped": 1},
        {"setting": "s", "n": 1000, "fits": 2, "stuck": 1, "escaped": 1}]


def test_a_setting_runs_the_grid_up_to_its_n_max(tmp_path):
    """`n_max` keeps a setting to the grid's n <= n_max (the other settings run all of it);
    an n_max below the whole grid is refused in one line before any cell."""
    from moestat.errors import InputError
    from moestat.experiments.config import parse_config
    from moestat.experiments.grid import cells
    from moestat.experiments.validation import check_runnable

    capped = TINY.replace('name = "exact"', 'name = "exact"\nn_max = 700', 1)
    config = parse_config(tomllib.loads(capped))
    ns = sorted({c.n for c in cells(config)})
    assert ns == [300, 600] and config.n_values() == [300, 600, 1200, 2400]
    low = parse_config(tomllib.loads(TINY.replace('name = "exact"',
                                                  'name = "exact"\nn_max = 100', 1)))
    with pytest.raises(InputError, match="n_max: 100 is below the smallest n"):
        check_runnable(low)


def test_an_unknown_setting_is_refused_before_any_cell(tiny, tmp_path):
    r = moestat("run", tiny, "--setting", "nope", "--out", tmp_path / "o")
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "error: --setting 'nope' is not a setting of tiny; its settings: exact"]
    assert not (tmp_path / "o" / "cells").exists()


def test_progress_sent_to_a_log_file_is_a_timestamped_line_per_cell():
    """A sweep whose output goes to a file (nohup, a batch job) cannot show the transient bar:
    it logs one line per finished cell instead, written through at once."""
    import io
    import re

    from rich.console import Console

    from moestat import render

    console, calls = Console(file=io.StringIO()), []
    with render.cell_progress(console, "demo", 3, then=lambda: calls.append(1)) as advance:
        advance(1, 3)
        advance(2, 3)
    lines = console.file.getvalue().splitlines()
    assert len(lines) == 2 and len(calls) == 2
    for line, done in zip(lines, (1, 2), strict=True):
        assert re.fullmatch(rf"\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d demo: {done}/3 cells done", line)
