"""A finished cell is keyed by what determines its rows (its setting, the seed, the metrics it
records), so editing claims or adding a setting keeps a run's finished cells, changing a
setting recomputes that setting's cells only, and directories keyed by the whole config (the
earlier scheme) are renamed in place instead of recomputed."""

from __future__ import annotations

import pytest

from moestat.errors import InputError
from moestat.experiments.grid import cells
from moestat.experiments.runner import prepare_out, resolve, run_sweep, selected_settings, status
from moestat.experiments.store import cell_key, cell_keys, config_hash
from truths import TWO_EXPERTS

BASE = """
name = "keys"
seed = 3
replicates = 2
block = 2
metrics = ["D1"]
n = [300, 600]
"""


def setting(name: str, max_iter: int, extra: str = "") -> str:
    return (f'\n[[settings]]\nname = "{name}"\ngate = "softmax"\nexpert = "linear"\n'
            f"max_iter = {max_iter}\n{extra}" + TWO_EXPERTS)


CLAIM = """
[[claims]]
expect = "slope"
setting = "exact"
metric = "D1"
value = -0.5
tol = 0.1
"""


def run(tmp_path, text, out):
    path = tmp_path / "keys.toml"
    path.write_text(text)
    config = resolve(path)
    prepare_out(config, out, resume=True)
    return run_sweep(config, out), config


def test_claims_and_new_settings_keep_cells_and_a_changed_setting_recomputes_its_own(
        tmp_path):
    out = tmp_path / "run"
    exact = setting("exact", 200)
    assert run(tmp_path, BASE + exact, out)[0] == 2
    # a claim, a theory table and a second setting: only the new setting's cells run
    other = setting("other", 200)
    judged = BASE + 'headline = "median"\n'
    computed, _ = run(tmp_path, judged + exact + other + CLAIM + "[theory]\nD1 = -0.5\n", out)
    assert computed == 2
    assert status(out)["complete"]
    # changing one setting recomputes its cells and sets the old ones aside
    changed = setting("exact", 300)
    computed, _ = run(tmp_path, BASE + changed + other, out)
    assert computed == 2
    assert len(list((out / "foreign").glob("*.parquet"))) == 2
    # another seed is another run
    with pytest.raises(InputError, match="different config"):
        run(tmp_path, BASE.replace("seed = 3", "seed = 4") + changed + other, out)


def test_a_directory_keyed_by_the_whole_config_is_renamed_not_recomputed(tmp_path):
    out = tmp_path / "run"
    text = BASE + setting("exact", 200)
    _, config = run(tmp_path, text, out)
    all_cells = cells(config)
    whole = config_hash(config)
    for c, (key, legacy) in zip(all_cells, cell_keys(config, all_cells), strict=True):
        assert legacy == cell_key(whole, c) != key
        (out / "cells" / f"{key}.parquet").rename(out / "cells" / f"{legacy}.parquet")
    assert status(out)["complete"]  # both keys count
    assert run(tmp_path, text, out)[0] == 0
    names = {p.stem for p in (out / "cells").glob("*.parquet")}
    assert names == {key for key, _ in cell_keys(config, all_cells)}


def test_a_run_of_chosen_settings_leaves_the_others_to_a_later_run(tmp_path):
    """`only` (moestat run --setting) computes the named settings' cells; the directory holds
    the whole config, reported partial (and drawn, a metric no finished cell records left
    out) until a run without it computes the rest."""
    from moestat.experiments.plot import save_rate_figure

    out = tmp_path / "run"
    path = tmp_path / "keys.toml"
    path.write_text(BASE + setting("exact", 200)
                    + setting("other", 200, 'metrics = ["hellinger"]\n'))
    config = resolve(path)
    prepare_out(config, out, resume=True)
    assert selected_settings(config, None) == {"exact", "other"}
    with pytest.raises(InputError, match="'nope' is not a setting of keys; its settings: "
                                         "exact, other"):
        selected_settings(config, ["nope"])
    assert run_sweep(config, out, only=selected_settings(config, ["other"])) == 2
    st = status(out)
    assert not st["complete"] and st["cells_done"] == 2
    assert st["by_setting"] == {"exact": [0, 2], "other": [2, 2]}
    assert save_rate_figure(out, tmp_path / "partial.png").exists()  # no D1 column yet
    assert run_sweep(config, out) == 2  # the rest; "other" is not recomputed
    assert status(out)["complete"]
    # --no-resume with --setting recomputes that setting's cells only
    prepare_out(config, out, resume=False, only={"exact"})
    assert status(out)["cells_done"] == 2
    assert run_sweep(config, out, only={"exact"}) == 2 and status(out)["complete"]
