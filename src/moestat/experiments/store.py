"""Results on disk: one Parquet file per finished cell, written atomically.

    DIR/config.resolved.toml   the resolved config (preset and seed applied)
    DIR/cells/<key>.parquet    one finished cell; key = sha256(setting hash | cell)[:24]
    DIR/cells/<key>.failed.parquet   a cell whose computation kept raising: its rows say so
                               (reports count them as failed fits), and it is not done — a
                               rerun computes it again and the success replaces it
    DIR/foreign/               cell files whose key is no cell of this config (copied in from
                               another run): moved aside, never counted

A cell file appears only complete (temporary file in the same directory, fsync, rename), so an
interrupted sweep loses at most the cells in flight, and `--resume` skips what exists. Each
cell carries a SHA-256 of its rows in the Parquet metadata: a file that is unreadable
(truncated) or whose rows do not match it (corrupted on disk) is moved to DIR/corrupt/ (kept
for inspection, never silently used) and its cell is computed again. Cells written before the
checksum existed are accepted when readable.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel

from moestat.experiments.grid import Cell
from moestat.files import write_atomic


def config_hash(config: BaseModel) -> str:
    """Hash of what determines the results: the config's non-default content (a later version
    adding an option with a default keeps old run directories resumable), without `presets`
    (the applied preset is already in the fields; editing another preset changes nothing)."""
    blob = json.dumps(config.model_dump(mode="json", exclude_defaults=True,
                                        exclude={"presets"}), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def cell_key(chash: str, cell: Cell) -> str:
    raw = f"{chash}|{cell.setting}|{cell.n}|{cell.start}|{cell.stop}"
    return hashlib.sha256(raw.encode()).hexdigest()[:24]


# what a config holds that no cell's rows depend on: the report's reading (claims, theory,
# paper, headline...), the grid (a cell carries its n and replicate range), and the settings,
# truths and metrics lists, of which each cell's key takes its own setting (truth inlined) and
# metrics only
NOT_IN_CELLS = {"description", "local_window", "theory", "paper", "presets", "claims",
                "headline", "n", "replicates", "settings", "truths", "metrics", "init_scales"}


def setting_hash(config, setting) -> str:
    """Hash of what determines the cells of one setting: the config's other fields (seed,
    block...), the setting and the metrics it records. Editing a claim or another setting
    leaves it, and so the setting's finished cells, unchanged."""
    blob = json.dumps({"config": config.model_dump(mode="json", exclude_defaults=True,
                                                   exclude=NOT_IN_CELLS),
                       "setting": setting.model_dump(mode="json", exclude_defaults=True),
                       "metrics": config.metrics_for(setting.name)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def cell_keys(config, cells: list[Cell]) -> list[tuple[str, str]]:
    """(key, whole-config key) of each cell: cells are written under the first, which depends
    on the cell's own setting only (`setting_hash`); a cell file under the second, the key of
    run directories written before, counts as the same cell."""
    by_setting = {s.name: setting_hash(config, s) for s in config.settings}
    whole = config_hash(config)
    return [(cell_key(by_setting[c.setting], c), cell_key(whole, c)) for c in cells]


def cells_dir(out: Path) -> Path:
    return Path(out) / "cells"


CHECKSUM = b"moestat.sha256"


def rows_checksum(table: pa.Table) -> str:
    """SHA-256 of a cell's rows (column names and values, as JSON: layout-independent)."""
    blob = json.dumps(table.to_pydict(), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


FAILED = ".failed"  # the stem suffix of a failed cell's file


def write_cell(out: Path, key: str, rows: dict[str, list], failed: bool = False) -> Path:
    """Write a cell's rows atomically; a success removes the cell's earlier failed file."""
    path = cells_dir(out) / f"{key}{FAILED if failed else ''}.parquet"
    table = pa.table({k: pa.array(v, pa.float64()) if v and all(x is None for x in v) else v
                      for k, v in rows.items()})  # an all-null column is float64, not null
    table = table.replace_schema_metadata({CHECKSUM: rows_checksum(table).encode()})
    write_atomic(path, lambda tmp: pq.write_table(table, tmp))
    if not failed:
        (cells_dir(out) / f"{key}{FAILED}.parquet").unlink(missing_ok=True)
    return path


def read_cell(path: Path) -> pa.Table | None:
    """The cell's rows, or None when the file is unreadable or fails its checksum."""
    try:
        table = pq.read_table(path)
    except Exception:  # noqa: BLE001 - any parse failure means a damaged file
        return None
    meta = table.schema.metadata or {}
    table = table.replace_schema_metadata(None)
    if CHECKSUM in meta and meta[CHECKSUM].decode() != rows_checksum(table):
        return None
    return table


def quarantine_damaged(out: Path) -> list[str]:
    """Move every unreadable or corrupted cell file to DIR/corrupt/ (the cell is then missing
    and gets recomputed); returns the moved file names."""
    d = cells_dir(out)
    moved = []
    for p in sorted(d.glob("*.parquet")) if d.is_dir() else []:
        if read_cell(p) is None:
            dest = Path(out) / "corrupt" / p.name
            dest.parent.mkdir(exist_ok=True)
            os.replace(p, dest)
            moved.append(p.name)
    return moved


def _cell_files(out: Path) -> list[Path]:
    d = cells_dir(out)
    return sorted(d.glob("*.parquet")) if d.is_dir() else []


def done_keys(out: Path) -> set[str]:
    """Keys of the cells finished (failed cells are not: a rerun retries them)."""
    return {p.stem for p in _cell_files(out) if not p.stem.endswith(FAILED)}


def failed_keys(out: Path) -> set[str]:
    """Keys of the cells whose last computation failed."""
    return {p.stem.removesuffix(FAILED) for p in _cell_files(out) if p.stem.endswith(FAILED)}


def rekey(out: Path, pairs) -> int:
    """Rename finished cells from an old key to a new one, (old, new) per cell, where the new
    file does not exist yet (an atomic rename each); returns how many were renamed."""
    moved = 0
    for old, new in pairs:
        src, dest = cells_dir(out) / f"{old}.parquet", cells_dir(out) / f"{new}.parquet"
        if old != new and src.exists() and not dest.exists():
            os.replace(src, dest)
            moved += 1
    return moved


def quarantine_foreign(out: Path, expected: set[str]) -> list[str]:
    """Move cell files whose key is not in `expected` (this config's cells) to DIR/foreign/;
    returns the moved file names."""
    moved = []
    for p in _cell_files(out):
        if p.stem.removesuffix(FAILED) not in expected:
            dest = Path(out) / "foreign" / p.name
            dest.parent.mkdir(exist_ok=True)
            os.replace(p, dest)
            moved.append(p.name)
    return moved


def remove_temporaries(out: Path) -> int:
    """Delete temporaries left by a killed run; returns how many."""
    d = cells_dir(out)
    stale = list(d.glob(".*.tmp")) if d.is_dir() else []
    for p in stale:
        p.unlink(missing_ok=True)
    return len(stale)


def read_rows(out: Path, expected: set[str] | None = None) -> pa.Table | None:
    """Every cell's rows (those of `expected` keys only, when given; a failed file only when
    its cell has no successful one), or None when there are none."""
    files = _cell_files(out)
    done = done_keys(out)
    files = [f for f in files if (expected is None or f.stem.removesuffix(FAILED) in expected)
             and not (f.stem.endswith(FAILED) and f.stem.removesuffix(FAILED) in done)]
    if not files:
        return None
    tables = [read_cell(f) for f in files]
    bad = [f.name for f, t in zip(files, tables, strict=True) if t is None]
    if bad:
        from moestat.errors import InputError

        raise InputError(f"{len(bad)} damaged cell file(s) in {cells_dir(out)} (e.g. {bad[0]}): "
                         "run the sweep again to move them to corrupt/ and recompute them")
    # settings may have different metrics: missing columns read as null (NaN)
    return pa.concat_tables(tables, promote_options="default")
