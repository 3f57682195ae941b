"""Fuzzing the user's two inputs — CSV tables (`moestat fit`) and TOML configs (`moestat run`).

Property: every input ends in a documented success or in `InputError` with one line naming the
problem (the CLI's exit 2) — never another exception, never a hang. Examples per test:
FUZZ_EXAMPLES (CI default below; `MOESTAT_FUZZ_EXAMPLES=10000 pytest tests/test_fuzz.py` is the
long run reported in docs/reliability.md). Fits are kept tiny (1 restart, few iterations): the
property concerns input handling, not estimation.
"""

from __future__ import annotations

import csv
import io
import math
import os
import tomllib

import numpy as np
import pytest
import tomli_w
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from moestat.data import read_table
from moestat.errors import InputError

EXAMPLES = int(os.environ.get("MOESTAT_FUZZ_EXAMPLES", "150"))
HEALTH = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                suppress_health_check=HEALTH)
# the fit command runs a (tiny) fit for every valid table: a third of the examples
FUZZ_FIT = settings(max_examples=max(EXAMPLES // 3, 20), deadline=None, derandomize=True,
                    suppress_health_check=HEALTH)
NO_HANG = pytest.mark.timeout(300 + 2 * EXAMPLES)  # seconds for the whole test: never a hang

# ---- CSV tables ------------------------------------------------------------------------------
NAMES = ["x", "y", "z", "", " y ", "x", "ÿ", "a,b", "w"]
CELLS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-10**6, 10**6).map(str),
    st.sampled_from(["1e300", "-1e300", "1e309", "1e-320", "nan", "NaN", "inf", "-inf", "",
                     "NA", "null", " 3 ", "1,5", "0x10", "1e", "--1", "\u00a0", "\"", "1_000"]),
    st.text(max_size=6),
)


@st.composite
def csv_bytes(draw):
    """A header, 0-8 rows (ragged at times), as UTF-8 (with or without BOM), Latin-1 or
    UTF-16 bytes; sometimes a file with only constant columns or a single row."""
    if draw(st.booleans()):  # hostile everywhere
        header = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=5))
        if draw(st.booleans()):
            header = list(dict.fromkeys(header + ["y"]))  # often a usable target column
        rows = []
        for _ in range(draw(st.integers(0, 8))):
            width = len(header) if draw(st.integers(0, 4)) else draw(st.integers(0, 6))
            rows.append(draw(st.lists(CELLS, min_size=width, max_size=width)))
    else:  # numeric tables (often valid: they reach the fit), values from tiny to huge
        header = draw(st.sampled_from([["x", "y"], ["x", "z", "y"], ["y", "x"]]))
        scale = draw(st.sampled_from([1.0, 1e-150, 1e-8, 1e8, 1e140, 1e200]))
        values = st.floats(-1e3, 1e3, allow_nan=False).map(lambda v: repr(v * scale))
        n = draw(st.sampled_from([1, 2, 5, 12, 30, 60]))
        rows = draw(st.lists(st.lists(values, min_size=len(header), max_size=len(header)),
                             min_size=n, max_size=n))
        if draw(st.integers(0, 3)) == 0 and rows:  # one hostile cell
            rows[draw(st.integers(0, len(rows) - 1))][0] = draw(CELLS)
    buf = io.StringIO()
    csv.writer(buf).writerows([header, *rows])
    text = buf.getvalue()
    encoding = draw(st.sampled_from(["utf-8"] * 6 + ["utf-8-sig", "latin-1", "utf-16"]))
    try:
        return text.encode(encoding)
    except UnicodeEncodeError:
        return text.encode("utf-8")


def _one_line(e: InputError) -> None:
    msg = str(e)
    assert msg.strip() and "\n" not in msg.strip(), repr(msg)


@NO_HANG
@FUZZ
@given(data=csv_bytes(), target=st.sampled_from(["y", "x", "q"]))
def test_csv_reader_refuses_or_returns_a_clean_table(tmp_path_factory, data, target):
    path = tmp_path_factory.mktemp("csv") / "data.csv"
    path.write_bytes(data)
    try:
        t = read_table(path, target)
    except InputError as e:
        _one_line(e)
        return
    n, d = t.X.shape
    assert n >= 1 and d >= 1 and t.y.shape == (n,)
    assert np.all(np.isfinite(t.X)) and np.all(np.isfinite(t.y))
    assert t.target == target and target not in t.features
    if n > 1:
        assert np.all(np.ptp(t.X, axis=0) > 0)  # constant columns are refused


@NO_HANG
@FUZZ_FIT
@given(data=csv_bytes(), experts=st.integers(-1, 4),
       options=st.sampled_from([[], ["--gate", "sigmoid"], ["--expert", "ridge:tanh"],
                                ["--estimator", "lse"], ["--noise", "laplace"],
                                ["--features", "x,z"], ["--gate", "topk_softmax:9"],
                                ["--tol", "-1"], ["--max-iter", "0"]]))
def test_fit_command_exits_0_or_2_with_one_line(tmp_path_factory, capsys, data, experts,
                                                options):
    from moestat.cli import main

    path = tmp_path_factory.mktemp("csv") / "data.csv"
    path.write_bytes(data)
    code = main(["fit", str(path), "--target", "y", "--experts", str(experts), "--n-init", "1",
                 "--max-iter", "5", "--json", *options])
    out, err = capsys.readouterr()
    if os.environ.get("MOESTAT_FUZZ_LOG"):
        with open(os.environ["MOESTAT_FUZZ_LOG"], "a") as f:
            f.write(f"{code} {err.strip()[:100]}\n")
    assert code in (0, 2), err
    if code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), err
        assert out == ""
    else:
        import json

        res = json.loads(out)
        flat = np.concatenate([np.ravel(np.asarray(v, float))
                               for v in res["parameters"].values()])
        assert np.all(np.isfinite(flat)) and np.isfinite(res["loglik"])


# ---- TOML configs ----------------------------------------------------------------------------
BASE = {
    "name": "fuzz", "seed": 1, "replicates": 2, "block": 2, "metrics": ["D1", "hellinger"],
    "n": {"start": 100.0, "stop": 400.0, "num": 3},
    "settings": [{
        "name": "exact", "gate": "softmax", "expert": "linear", "n_experts": 2,
        "n_features": 1, "x": {"dist": "uniform", "low": 0.0, "high": 1.0},
        "init": {"kind": "near_truth", "scale": 0.1},
        "truth": {"gate.beta1": [[6.0], [0.0]], "gate.beta0": [-3.0, 0.0],
                  "expert.a": [[-3.0], [3.0]], "expert.b": [2.0, -1.0],
                  "noise.var": [0.05, 0.08]},
    }],
    "theory": {"D1": -0.5},
}
HOSTILE = st.one_of(
    st.integers(-10**12, 10**12), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8), st.booleans(), st.lists(st.integers(-5, 10**9), max_size=4),
    st.sampled_from([0, -1, 10**9, 1e30, -1e-300, "quick", [], {}, {"start": 1.0},
                     [[1.0, 2.0]], "topk_softmax:0", "ridge:nope", "contaminated"]),
    st.dictionaries(st.sampled_from(["start", "stop", "num", "value", "plus", "power", "x"]),
                    st.one_of(st.integers(-3, 10**9), st.floats(-1e9, 1e9)), max_size=3),
)


def _paths(tree, prefix=()):
    """Every key path of a nested dict / list (lists of tables included)."""
    out = []
    items = tree.items() if isinstance(tree, dict) else enumerate(tree)
    for k, v in items:
        out.append((*prefix, k))
        if isinstance(v, dict | list) and v and not isinstance(v[0] if isinstance(v, list)
                                                               else None, float | int | list):
            out.extend(_paths(v, (*prefix, k)))
    return out


PATHS = _paths(BASE)


@st.composite
def config_bytes(draw):
    import copy

    cfg = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS))
        node = cfg
        try:
            for k in path[:-1]:
                node = node[k]
            action = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
            if action == "replace":
                node[path[-1]] = draw(HOSTILE)
            elif action == "delete" and isinstance(node, dict):
                node.pop(path[-1], None)
            elif isinstance(node, dict):
                node[draw(st.sampled_from(["colour", "n_expert", "Seed", "presets"]))] = \
                    draw(HOSTILE)
        except (KeyError, IndexError, TypeError):
            pass  # an earlier mutation removed or retyped the path
    try:
        data = tomli_w.dumps(cfg).encode()
    except (TypeError, ValueError):
        data = b"name = 'fuzz'\nreplicates = 2\nn = [100, 200]\n"  # not TOML-serialisable
    cut = draw(st.sampled_from([None, None, None, "truncate", "latin-1"]))
    if cut == "truncate":
        data = data[: draw(st.integers(0, len(data)))]
    elif cut == "latin-1":
        data = data.replace(b"fuzz", b"f\xe9zz", 1)
    return data


@NO_HANG
@FUZZ
@given(data=config_bytes(), preset=st.sampled_from([None, None, "quick"]))
def test_config_refused_in_one_line_or_bounded(tmp_path_factory, data, preset):
    from moestat.experiments.grid import cells
    from moestat.experiments.runner import resolve

    path = tmp_path_factory.mktemp("cfg") / "c.toml"
    path.write_bytes(data)
    try:
        cfg = resolve(path, preset)
        grid = cells(cfg)
    except InputError as e:
        _one_line(e)
        return
    assert tomllib.loads(data.decode())  # accepted text is valid TOML
    assert 1 <= len(grid) <= 10**6
    assert all(2 <= c.n <= 10**8 for c in grid)


HEAD = b"name = 'x'\nmetrics = ['l2']\n"


@pytest.mark.parametrize("text,message", [
    (HEAD + b"replicates = 2\nn = { start = 1e3, stop = 1e12, num = 5 }\n", "stop"),
    (HEAD + b"replicates = 1000000000\nn = [100, 200]\n", "replicates"),
])
def test_absurd_sizes_are_refused(tmp_path, text, message):
    from moestat.experiments.runner import resolve

    p = tmp_path / "c.toml"
    p.write_bytes(text + b"[[settings]]\nname = 's'\nn_experts = 1\nn_features = 1\n"
                  b"truth = { 'expert.a' = [[1.0]], 'expert.b' = [0.0], 'noise.var' = [1.0], "
                  b"'gate.beta1' = [[0.0]], 'gate.beta0' = [0.0] }\n")
    with pytest.raises(InputError, match=message) as e:
        resolve(p)
    _one_line(e.value)


# ---- values in a config: refused before any cell, or every fit runs ---------------------------
HOSTILE = st.one_of(st.floats(-1e3, 1e3), st.sampled_from(
    [0.0, -0.0, 1e-320, 1e149, 1e300, -1e300, math.nan, math.inf, -math.inf]))


def _mostly(valid, hostile=HOSTILE):
    """valid values 4 times in 5: most examples reach the fit"""
    return st.integers(0, 4).flatmap(lambda i: hostile if i == 0 else valid)


VALUES = _mostly(st.floats(0.01, 10.0))


def _toml(v: float) -> str:
    return {math.inf: "inf", -math.inf: "-inf"}.get(v, "nan" if math.isnan(v) else repr(v))


@NO_HANG
@settings(max_examples=max(EXAMPLES // 12, 12), deadline=None, derandomize=True,
          suppress_health_check=HEALTH)
@given(var=st.tuples(VALUES, VALUES), b=VALUES, low=_mostly(st.floats(-5.0, 0.0)),
       high=_mostly(st.floats(0.5, 5.0)), k=st.sampled_from([2, 3]),
       assignment=_mostly(st.none(), st.lists(st.integers(-1, 3), min_size=1, max_size=4)))
def test_config_values_refused_before_any_cell_or_every_fit_runs(var, b, low, high, k,
                                                                 assignment):
    """Random values where a config takes numbers (true variances, an expert intercept, the
    input law's bounds, a split assignment): `resolve` refuses with one line (exit 2 in the
    CLI), or the smallest cell runs with no failed fit and a finite objective — no value a
    check could have caught reaches a fit."""
    from moestat.experiments.cell import run_cell
    from moestat.experiments.config import parse_config
    from moestat.experiments.grid import cells
    from moestat.experiments.validation import check_runnable

    split = "" if assignment is None else f", assignment = {assignment}"
    text = f"""name = "values"
seed = 0
replicates = 1
block = 1
metrics = ["D1"]
n = [200]
[[settings]]
name = "s"
n_experts = {k}
n_features = 1
max_iter = 30
x = {{ dist = "uniform", low = {_toml(low)}, high = {_toml(high)} }}
init = {{ kind = "near_truth", scale = 0.1{split} }}
[settings.truth]
"gate.beta1" = [[2.0], [0.0]]
"gate.beta0" = [0.5, 0.0]
"expert.a" = [[1.0], [-1.0]]
"expert.b" = [{_toml(b)}, 0.5]
"noise.var" = [{_toml(var[0])}, {_toml(var[1])}]
"""
    import tomllib

    try:
        config = parse_config(tomllib.loads(text))
        check_runnable(config)
    except InputError as e:
        assert "\n" not in str(e)
        event("refused")
        return
    event("ran")
    rows = run_cell(config, cells(config)[0])
    assert not any(rows["failed"])
    assert all(v is not None and math.isfinite(v) for v in rows["objective"]), rows["objective"]
