"""The `moestat` command line: real subprocesses (the table of bad inputs in-process through
the same entry point), exit codes and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "two_experts.csv"


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "moestat", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_fit_json_and_save(tmp_path):
    out = tmp_path / "fit.json"
    r = run("fit", EXAMPLE, "--target", "y", "--experts", "2", "--json", "--save", out)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["converged"] and res["n_samples"] == 2000 and res["features"] == ["x"]
    slopes = sorted(a[0] for a in res["parameters"]["expert.a"])
    assert abs(slopes[0] + 20) < 0.5 and abs(slopes[1] - 20) < 0.5  # the shipped truth
    assert json.loads(out.read_text())["loglik"] == res["loglik"]
    assert res["bic"] > -2 * res["loglik"]


def test_fit_selects_the_number_of_experts_and_draws_the_fit(tmp_path):
    """The shipped two-expert table (well separated, 2000 rows): BIC over k = 1..3 picks 2,
    the JSON carries the criteria table, the standard errors and the 3-expert fit's dendrogram
    (whose top level is that fit: same log-likelihood), and both figures are written."""
    figure, tree_figure = tmp_path / "fit.png", tmp_path / "tree.svg"
    r = run("fit", EXAMPLE, "--target", "y", "--experts", "1..3", "--n-init", "4", "--json",
            "--plot", figure, "--dendrogram", tree_figure)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    sel = res["selection"]
    assert sel["criterion"] == "bic" and sel["selected_k"] == 2
    assert [row["k"] for row in sel["table"]] == [1, 2, 3]
    assert min(sel["table"], key=lambda row: row["bic"])["k"] == 2
    assert all(row["icl"] >= row["bic"] for row in sel["table"])  # ICL adds an entropy
    assert res["standard_errors_ok"] and set(res["standard_errors"]) == set(res["parameters"])
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    tree = sel["dendrogram"]
    assert tree["from_k"] == 3 and [lv["k"] for lv in tree["levels"]] == [3, 2, 1]
    top = tree["levels"][0]["mean_loglik"] * res["n_samples"]
    assert abs(top - sel["table"][2]["loglik"]) < 1e-6 * abs(top)
    assert len(tree["linkage"]) == 2 and "<svg" in tree_figure.read_text()


def test_fit_table_output():
    r = run("fit", EXAMPLE, "--target", "y", "--experts", "2", "--bootstrap", "20")
    assert r.returncode == 0, r.stderr
    assert "gate.beta1" in r.stdout and "BIC" in r.stdout and "converged" in r.stdout
    assert "bootstrap SE (20 refits)" in r.stdout


def test_list():
    r = run("list")
    assert r.returncode == 0
    for name in ("softmax", "topk_softmax", "contaminated", "ridge", "laplace", "lse",
                 "contaminated_distinguishable", "scaled_ridge:ACT[/ROUTED]"):
        assert name in r.stdout


def _write(tmp_path, name, text, mode="w"):
    p = tmp_path / name
    if mode == "wb":
        p.write_bytes(text)
    else:
        p.write_text(text)
    return p


GOOD_ROWS = "".join(f"{i / 50:.3f},{(i % 7) / 3:.3f},{(i * 3 % 11) / 5:.3f}\n"
                    for i in range(60))
CASES = [
    ("nan", "x,z,y\n" + GOOD_ROWS + "0.5,nan,1\n", ["--target", "y"], "row 62: missing value"),
    ("inf", "x,z,y\n" + GOOD_ROWS + "0.5,inf,1\n", ["--target", "y"], "non-finite"),
    ("text", "x,z,y\n" + GOOD_ROWS + "0.5,abc,1\n", ["--target", "y"], "'abc' is not a number"),
    ("empty", "", ["--target", "y"], "empty file"),
    ("header only", "x,z,y\n", ["--target", "y"], "no data rows"),
    ("unknown target", "x,z,y\n" + GOOD_ROWS, ["--target", "w"], "unknown target column 'w'"),
    ("unknown feature", "x,z,y\n" + GOOD_ROWS, ["--target", "y", "--features", "x,q"],
     "unknown feature column"),
    ("k < 1", "x,z,y\n" + GOOD_ROWS, ["--target", "y", "--experts", "0"],
     "--experts must be >= 1"),
    ("range decreasing", "x,z,y\n" + GOOD_ROWS, ["--target", "y", "--experts", "3..1"],
     "must increase"),
    ("range from 0", "x,z,y\n" + GOOD_ROWS, ["--target", "y", "--experts", "0..2"],
     "--experts must be >= 1"),
    ("range, frozen expert", "x,z,y\n" + GOOD_ROWS,
     ["--target", "y", "--experts", "1..2", "--gate", "contaminated"], "needs a frozen expert"),
    ("unknown criterion", "x,z,y\n" + GOOD_ROWS,
     ["--target", "y", "--experts", "1..2", "--criterion", "foo"], "criterion must be one of"),
    ("plot format", "x,z,y\n" + GOOD_ROWS, ["--target", "y", "--plot", "fit.txt"],
     "must end in .png"),
    ("plot unwritable", "x,z,y\n" + GOOD_ROWS, ["--target", "y", "--plot", "/proc/fit.png"],
     "cannot write in /proc"),
    ("plot to missing directory", "x,z,y\n" + GOOD_ROWS,
     ["--target", "y", "--plot", "/nonexistent-dir/fit.png"], "does not exist"),
    ("dendrogram format", "x,z,y\n" + GOOD_ROWS, ["--target", "y", "--dendrogram", "t.jpg"],
     "--dendrogram t.jpg: the file name must end in .png"),
    ("dendrogram of a sigmoid gate", "x,z,y\n" + GOOD_ROWS,
     ["--target", "y", "--gate", "sigmoid", "--estimator", "lse", "--dendrogram", "t.png"],
     "needs a mixture with the"
     " softmax gate"),
    ("dic with a quadratic gate", "x,z,y\n" + GOOD_ROWS, ["--target", "y", "--experts", "1..2",
     "--criterion", "dic", "--gate", "quadratic_softmax"], "needs a mixture with the softmax"),
    ("one bootstrap sample", "x,z,y\n" + GOOD_ROWS, ["--target", "y", "--bootstrap", "1"],
     "--bootstrap must be 0 (off) or >= 2, got 1"),
    ("unknown finish", "x,z,y\n" + GOOD_ROWS, ["--target", "y", "--finish", "lbfgs"],
     "finish must be one of none, newton, got 'lbfgs'"),
    ("finish after mle", "x,z,y\n" + GOOD_ROWS,
     ["--target", "y", "--estimator", "mle", "--finish", "newton"],
     "finish 'newton' follows EM; estimator 'mle' has no EM phase"),
    ("finish, too many parameters", "x,z,y\n" + GOOD_ROWS,
     ["--target", "y", "--experts", "10", "--finish", "newton"],
     "finish 'newton' needs at most 64 free parameters; this model has 67: use EM without it"),
    ("unknown gate", "x,z,y\n" + GOOD_ROWS, ["--target", "y", "--gate", "foo"],
     "unknown gate 'foo'"),
    ("unknown expert", "x,z,y\n" + GOOD_ROWS, ["--target", "y", "--expert", "foo"],
     "unknown expert 'foo'"),
    ("too few rows", "x,z,y\n" + GOOD_ROWS, ["--target", "y", "--experts", "12"],
     "fewer rows than parameters"),
    ("duplicated header", "x,x,y\n" + GOOD_ROWS, ["--target", "y"], "duplicated column"),
    ("ragged", "x,z,y\n" + GOOD_ROWS + "1,2\n", ["--target", "y"], "has 2 fields"),
    ("constant column", "x,z,y\n" + "".join(f"1,{i},{i % 3}\n" for i in range(50)),
     ["--target", "y"], "constant feature"),
    ("bad option type", "x,z,y\n" + GOOD_ROWS, ["--target", "y", "--experts", "two"],
     "--experts"),
    ("constant target", "x,z,y\n" + "".join(f"{i},{i % 5},2.5\n" for i in range(50)),
     ["--target", "y"], "the target 'y' is constant"),
    ("quoted cell over two lines", "x,z,y\n" + GOOD_ROWS + '0.5,"1\n2",1\n' + GOOD_ROWS,
     ["--target", "y"], "line 63: a quoted cell spans several lines"),
]


@pytest.mark.parametrize("label,text,args,message", CASES, ids=[c[0] for c in CASES])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, label, text, args, message):
    """In-process through `cli.main`, the entry point the `moestat` script calls (a
    subprocess per case would spend its time importing JAX; the other tests here run real
    subprocesses)."""
    from moestat import cli

    path = _write(tmp_path, "data.csv", text)
    code = cli.main(["fit", str(path), *map(str, args)])
    out, err = capsys.readouterr()
    assert code == 2, (code, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert message in lines[0], lines[0]
    assert out == ""


def test_missing_file_and_non_utf8(tmp_path):
    r = run("fit", tmp_path / "absent.csv", "--target", "y")
    assert r.returncode == 2 and "not found" in r.stderr
    p = _write(tmp_path, "latin.csv", b"x,y\n\xe9\xe9,1\n", mode="wb")
    r = run("fit", p, "--target", "y")
    assert r.returncode == 2 and "not UTF-8" in r.stderr


def test_bom_is_accepted(tmp_path):
    p = _write(tmp_path, "bom.csv", "\ufeffx,z,y\n" + GOOD_ROWS)
    r = run("fit", p, "--target", "y", "--experts", "1", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["features"] == ["x", "z"]


def test_device_option(tmp_path, monkeypatch):
    """--device cpu computes on the CPU and is handed to worker processes through
    $MOESTAT_DEVICE; --device gpu is refused in one line when JAX sees no GPU (and selects
    it when there is one); an unknown device is refused."""
    import jax

    from moestat.device import ENV

    monkeypatch.delenv(ENV, raising=False)
    data = tmp_path / "d.csv"
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, 200)
    data.write_text("x,y\n" + "\n".join(f"{a:.6f},{2 * a + rng.normal(0, 0.1):.6f}" for a in x))
    r = run("--device", "cpu", "fit", data, "--target", "y", "--experts", "1", "--json")
    assert r.returncode == 0, r.stderr
    try:
        has_gpu = bool(jax.devices("gpu"))
    except RuntimeError:
        has_gpu = False
    r = run("--device", "gpu", "list")
    if has_gpu:
        assert r.returncode == 0, r.stderr
    else:
        assert r.returncode == 2 and r.stderr.strip().splitlines() == [
            "error: --device gpu: JAX sees no GPU (install moestat[cuda] on a machine with an "
            "NVIDIA GPU and driver, or use --device cpu)"]
    r = run("--device", "tpu", "list")
    assert r.returncode == 2 and "--device must be one of auto, cpu, gpu" in r.stderr
    from moestat.device import select_device

    assert select_device("cpu") == "cpu" and os.environ[ENV] == "cpu"


def test_bench_json_compares_with_the_numpy_baseline():
    """`moestat bench --json` (small n): both EMs run the same algorithm on the same data —
    moestat's final log-likelihood is at least NumPy's last E-step value (one M-step later,
    EM is monotone) and within 1e-5 of it relatively — and the ratio is reported (its size
    is measured in docs/performance.md, never asserted as a timing)."""
    r = run("bench", "--n", "2000", "--iters", "40", "--json")
    assert r.returncode == 0, r.stderr
    em = json.loads(r.stdout)["em_throughput"]
    assert em["n"] == 2000 and em["iterations"] == 40 and em["ratio"] > 0
    gap = em["loglik_moestat"] - em["loglik_numpy_last_estep"]
    assert -1e-9 <= gap / abs(em["loglik_moestat"]) < 1e-5, gap  # -1e-9: rounding
