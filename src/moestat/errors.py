"""Errors raised at the validation boundary.

`InputError` is a `ValueError` whose message is one line naming what is wrong; the CLI turns it
into exit code 2 without a traceback.
"""


class InputError(ValueError):
    """Invalid user input (data, configuration, argument). Message: one line."""


def require(module: str, extra: str):
    """Import an optional dependency, or refuse in one line naming the extra that brings it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise InputError(f"this needs the optional dependency {module!r}: "
                         f"pip install 'moestat[{extra}]'") from None
