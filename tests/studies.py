"""Small studies the tests run: a config text written, resolved and swept into a directory."""

from __future__ import annotations

from pathlib import Path

from moestat.experiments import runner


def run_study(directory: Path, name: str, text: str, only=None):
    """(resolved config, run directory) of the study `text` (TOML) swept in-process into
    directory / "run"; `only`: the settings whose cells run (default all)."""
    (directory / f"{name}.toml").write_text(text)
    config = runner.resolve(directory / f"{name}.toml")
    out = directory / "run"
    runner.prepare_out(config, out, True)
    runner.run_sweep(config, out, only=only)
    return config, out
