"""Reading config files: TOML text, and pydantic validation errors as one line naming the
field (configs of every kind: rate studies and the attention experiment)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, ValidationError

from moestat.errors import InputError

_UNION_TAGS = {"LogGrid", "NDependent", "float", "int", "str", "bool"}


def _one_line(e: ValidationError, source: str) -> str:
    """The most telling error in one line: for a field that accepts several forms (a union,
    e.g. the n grid as a list or as {start, stop, num}) prefer an error about a value over
    "is not of this form", and drop the union-branch tags from the location."""
    errors = e.errors()
    err = next((x for x in errors if not x["type"].endswith("_type")), errors[0])
    loc = [p for p in err["loc"] if not (isinstance(p, str) and ("[" in p or p in _UNION_TAGS))]
    where = ".".join(str(p) for p in loc) or "(top level)"
    msg = err["msg"].replace("\n", " ")
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    more = f" (+{len(e.errors()) - 1} more)" if len(e.errors()) > 1 else ""
    return f"{source}: {where}: {msg}{more}"


def validate(model: type[BaseModel], data: dict, source: str = "config"):
    """model.model_validate(data), with a one-line InputError naming the field."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise InputError(_one_line(e, source)) from None


def read_toml(path: str | Path) -> dict:
    """A TOML file's content; one-line InputError when missing, not UTF-8 or not TOML."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"config file not found: {path}")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"{path}: not valid TOML ({str(e).splitlines()[0]})") from None
