"""Files moestat writes: atomic replacement (a reader sees the old file or the new one, never
a part) and strict JSON (null where a float is not finite)."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def write_atomic(path: Path, write: Callable[[str], object]) -> None:
    """Call write(tmp_path) on a temporary in the same directory, fsync it, rename it onto
    `path`. On any failure (a full disk, a kill) the temporary is removed and `path` keeps
    its previous content."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; results are meant to be shared
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and e.errno is not None:  # name the file being written
            raise OSError(e.errno, e.strerror, str(path)) from e
        raise


def write_text_atomic(path: Path, text: str) -> None:
    write_atomic(path, lambda tmp: Path(tmp).write_text(text))


def save_figure_atomic(fig, path: Path, dpi: int = 120) -> Path:
    """A matplotlib figure written atomically, in the format its suffix names."""
    path = Path(path)
    write_atomic(path, lambda tmp: fig.savefig(tmp, format=path.suffix[1:].lower(), dpi=dpi))
    return path


def strict_json(obj, **kw) -> str:
    """json.dumps with null where a float is not finite (plain json.dumps writes NaN and
    Infinity, which are not JSON)."""
    def clean(o):
        if isinstance(o, float) and not math.isfinite(o):
            return None
        if isinstance(o, dict):
            return {k: clean(v) for k, v in o.items()}
        if isinstance(o, list | tuple):
            return [clean(v) for v in o]
        return o

    return json.dumps(clean(obj), allow_nan=False, **kw)
