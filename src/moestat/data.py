"""Reading a user's table (CSV) into (X, y) with one-line errors naming the problem."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from moestat.errors import InputError

MISSING = {"", "na", "nan", "null", "none", "-nan", "n/a"}


@dataclass(frozen=True)
class Table:
    X: np.ndarray  # (n_samples, n_features)
    y: np.ndarray  # (n_samples,)
    features: tuple[str, ...]
    target: str
    classes: tuple[str, ...] | None = None  # labels read as classes: y holds their indices


def _parse(value: str, column: str, row: int) -> float:
    v = value.strip()
    if v.lower() in MISSING:
        raise InputError(f"column {column!r} row {row}: missing value")
    try:
        x = float(v)
    except ValueError:
        raise InputError(f"column {column!r} row {row}: {v[:40]!r} is not a number") from None
    if not math.isfinite(x):
        raise InputError(f"column {column!r} row {row}: non-finite value {v!r}")
    return x


def read_table(path: str | Path, target: str, features: list[str] | None = None,
               labels: bool = False) -> Table:
    """Numeric CSV with a header row; `features` default to every column but `target`. With
    `labels`, the target holds class labels (any text): y their indices into `classes`
    (sorted: as numbers when every label is one, else as text).

    Rows are numbered by their line in the file (header = row 1). Refuses: missing or empty
    files, non-UTF-8 text, quoted cells spanning lines, duplicated or empty column names,
    ragged rows, unknown columns, missing, non-numeric or non-finite values, constant feature
    columns (not identifiable next to the intercept), a constant target (nothing to fit).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"data file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None
    rows, lines = [], []  # records and the file line each ends on
    reader = csv.reader(io.StringIO(text, newline=""))
    for r in reader:
        if any("\n" in c or "\r" in c for c in r):
            raise InputError(f"{path}: line {reader.line_num}: a quoted cell spans several "
                             "lines (one value per cell, one row per line)")
        if any(c.strip() for c in r):
            rows.append(r)
            lines.append(reader.line_num)
    if not rows:
        raise InputError(f"{path}: empty file (a header row and data rows are needed)")
    header = [h.strip() for h in rows[0]]
    if any(not h for h in header):
        raise InputError(f"{path}: empty column name in the header")
    dup = sorted({h for h in header if header.count(h) > 1})
    if dup:
        raise InputError(f"{path}: duplicated column names {dup}")
    if len(rows) < 2:
        raise InputError(f"{path}: no data rows below the header")
    if target not in header:
        raise InputError(f"unknown target column {target!r}; columns are {header}")
    if features is None:
        features = [h for h in header if h != target]
    unknown = [f for f in features if f not in header]
    if unknown:
        raise InputError(f"unknown feature column(s) {unknown}; columns are {header}")
    if target in features:
        raise InputError(f"target {target!r} is also listed as a feature")
    if not features:
        raise InputError("no feature columns: the table needs at least one besides the target")
    cols = [header.index(f) for f in features]
    t = header.index(target)
    X = np.empty((len(rows) - 1, len(cols)))
    y = np.empty(len(rows) - 1)
    text = []
    for i, (r, line) in enumerate(zip(rows[1:], lines[1:], strict=True)):
        if len(r) != len(header):
            raise InputError(f"{path}: row {line} has {len(r)} fields, the header has "
                             f"{len(header)}")
        X[i] = [_parse(r[c], header[c], line) for c in cols]
        if labels:
            if r[t].strip().lower() in MISSING:
                raise InputError(f"column {target!r} row {line}: missing label")
            text.append(r[t].strip())
        else:
            try:
                y[i] = _parse(r[t], target, line)
            except InputError as e:  # text in the target: labels, most likely
                if "is not a number" not in str(e):
                    raise
                raise InputError(f"{e} (class labels: --kind classification)") from None
    classes = None
    if labels:
        classes, y = _classes(text)
    const = [f for j, f in enumerate(features) if np.all(X[:, j] == X[0, j])] if len(y) > 1 \
        else []
    if const:
        raise InputError(f"constant feature column(s) {const}: drop them (not identifiable)")
    if np.all(y == y[0]):
        raise InputError(f"the target {target!r} is constant: there is nothing to fit")
    return Table(X, y, tuple(features), target, classes)


def _classes(text: list[str]) -> tuple[tuple[str, ...], np.ndarray]:
    """Sorted distinct labels and each row's index into them."""
    names = sorted(set(text))
    try:
        names = sorted(names, key=float)
    except ValueError:
        pass
    index = {c: i for i, c in enumerate(names)}
    return tuple(names), np.array([index[c] for c in text], dtype=np.float64)
