"""A config no cell could run with is refused before any cell, in one line naming the field,
exit 2, nothing written (experiments/validation.py and the schema)."""

from __future__ import annotations

import pytest
from tests.truths import TWO_EXPERTS

BASE = """name = "tiny"
seed = 3
replicates = 2
block = 2
metrics = ["D1"]
n = [300, 600]

[[settings]]
name = "exact"
gate = "softmax"
expert = "linear"
"""


def config(**edits) -> str:
    """The tiny two-expert study with text replacements applied to the setting."""
    text = BASE + TWO_EXPERTS
    for old, new in edits.items():
        old = {"var": '"noise.var" = [0.05, 0.08]', "b": '"expert.b" = [2.0, -1.0]',
               "x": 'x = { dist = "uniform", low = 0.0, high = 1.0 }',
               "k": "n_experts = 2"}.get(old, old)
        assert old in text, old
        text = text.replace(old, new)
    return text


CASES = [
    ("negative variance", config(var='"noise.var" = [-0.05, 0.08]'),
     "settings.exact.truth.noise.var: must be > 0"),
    ("nan in a truth", config(b='"expert.b" = [nan, -1.0]'),
     "settings.exact.truth.expert.b: every value must be finite"),
    ("inf in a truth", config(b='"expert.b" = [inf, -1.0]'), "must be finite"),
    ("low > high", config(x='x = { dist = "uniform", low = 1.0, high = 0.0 }'),
     "settings.exact.x: uniform needs low < high"),
    ("low == high", config(x='x = { dist = "uniform", low = 0.5, high = 0.5 }'),
     "uniform needs low < high"),
    ("tol inf", config(k="n_experts = 2\ntol = inf"), "settings.0.tol: Input should be a finite"),
    ("init scale nan", config(k='n_experts = 2\ninit = { kind = "near_truth", scale = nan }'),
     "settings.0.init.scale: Input should be a finite"),
    ("assignment length", config(k='n_experts = 3\ninit = { assignment = [0, 1] }'),
     "settings.exact.init.assignment: needs one true atom per fitted expert (3 entries), got 2"),
    ("assignment range", config(k='n_experts = 3\ninit = { assignment = [0, 1, 5] }'),
     "settings.exact.init.assignment: true atoms are numbered 0..1, got 5"),
    ("variance negative at some n", config(
        var='"noise.var" = { value = [0.05, 0.08], plus = [-1.0, 0.0], power = -0.5 }'),
     "settings.exact.truth.noise.var: must be > 0 at n = 300"),
]


def run_main(tmp_path, capsys, text, *args):
    from moestat import cli

    path = tmp_path / "c.toml"
    path.write_text(text)
    out = tmp_path / "out"
    code = cli.main(["run", str(path), "--out", str(out), *args])
    _, err = capsys.readouterr()
    return code, err, out


@pytest.mark.parametrize("label,text,message", CASES, ids=[c[0] for c in CASES])
def test_refused_before_any_cell(tmp_path, capsys, label, text, message):
    code, err, out = run_main(tmp_path, capsys, text)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert message in lines[0], lines[0]
    assert not out.exists()  # nothing written


HUGE_FEATURES = 1024


def huge_config() -> str:
    """n = 1e8 rows of 1024 features: ~800 GB of data a replicate."""
    row = "[" + ", ".join(["0.0"] * HUGE_FEATURES) + "]"
    return (BASE.replace("n = [300, 600]", "n = [100000000]")
            + f'n_experts = 2\nn_features = {HUGE_FEATURES}\n[settings.truth]\n'
            f'"gate.beta1" = [{row}, {row}]\n"gate.beta0" = [0.0, 0.0]\n'
            f'"expert.a" = [{row}, {row}]\n"expert.b" = [1.0, -1.0]\n"noise.var" = [1.0, 1.0]\n')


def test_a_cell_beyond_the_memory_budget_is_refused_at_once(tmp_path, capsys):
    """Refused with the cell and the size its rows alone need, before anything is simulated."""
    code, err, out = run_main(tmp_path, capsys, huge_config())
    assert code == 2 and "settings.exact: one replicate at n = 100000000 needs at least" in err
    assert "GB, above the memory budget" in err and not out.exists()


def test_the_memory_refusal_comes_before_jax_is_imported(tmp_path):
    """What makes the refusal take well under a second: the command line reads the config and
    sizes its rows without importing JAX (~1 s of imports). A fresh interpreter runs the
    command and reports whether JAX was imported."""
    import subprocess
    import sys

    path = tmp_path / "huge.toml"
    path.write_text(huge_config())
    code = ("import sys; from moestat import cli; "
            f"rc = cli.main(['run', {str(path)!r}, '--out', {str(tmp_path / 'o')!r}]); "
            "print(rc, 'jax' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120)
    assert r.stdout.split() == ["2", "False"], (r.stdout, r.stderr)
    assert "needs at least" in r.stderr and not (tmp_path / "o").exists()


def test_a_model_whose_fit_needs_more_than_its_rows_is_refused_by_the_full_estimate(
        tmp_path, capsys, monkeypatch):
    """Rows within the budget, the fit's own arrays (gate Hessian, statistics) beyond it: the
    validation pass's estimate (fit.bytes_per_fit) refuses it, saying "about"."""
    from moestat.experiments.config import parse_config
    from moestat.experiments.config_reading import read_toml
    from moestat.experiments.settings import fitted_model
    from moestat.fit import bytes_per_fit
    from moestat.memory import rows_bytes

    text = config()
    path = tmp_path / "probe.toml"
    path.write_text(text)
    setting = parse_config(read_toml(path)).settings[0]
    rows, full = rows_bytes(600, 1, 2), bytes_per_fit(fitted_model(setting), 600)
    assert rows < full
    monkeypatch.setenv("MOESTAT_MEMORY_GB", repr((rows + full) / 2 / 2**30))
    code, err, out = run_main(tmp_path, capsys, text)
    assert code == 2 and "settings.exact: one replicate at n = 600 needs about" in err, err
    assert not out.exists()


EXAMPLE = "examples/two_experts.csv"
ARG_CASES = [
    ("run seed too large", ["run", "{cfg}", "--seed", "99999999999", "--out", "{tmp}/o"],
     "--seed must be in [0, 4294967295], got 99999999999"),
    ("run seed negative", ["run", "{cfg}", "--seed", "-1", "--out", "{tmp}/o"],
     "--seed must be in [0, 4294967295], got -1"),
    ("run out is a file", ["run", "{cfg}", "--out", "{tmp}/file"], "is a file; name a directory"),
    ("fit seed negative", ["fit", EXAMPLE, "--target", "y", "--seed", "-1"],
     "--seed must be in [0, 4294967295], got -1"),
    ("fit save onto a directory", ["fit", EXAMPLE, "--target", "y", "--save", "{tmp}"],
     "is a directory; name a file"),
    ("status of a garbage run directory", ["status", "{tmp}/garbage"], "not valid TOML"),
    ("report of a garbage run directory", ["report", "{tmp}/garbage"], "not valid TOML"),
]


@pytest.mark.parametrize("label,args,message", ARG_CASES, ids=[c[0] for c in ARG_CASES])
def test_bad_arguments_exit_2_before_any_work(tmp_path, capsys, label, args, message):
    from moestat import cli

    (tmp_path / "c.toml").write_text(config())
    (tmp_path / "file").write_text("")
    (tmp_path / "garbage").mkdir()
    (tmp_path / "garbage" / "config.resolved.toml").write_text("garbage [[[")
    before = sorted(p.name for p in tmp_path.iterdir())
    args = [a.format(cfg=tmp_path / "c.toml", tmp=tmp_path) for a in args]
    code = cli.main(args)
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert message in lines[0], lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before and out == ""
