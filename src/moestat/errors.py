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


SEED_MAX = 2**32 - 1  # JAX and NumPy seeds are unsigned 32-bit


def check_seed(seed: int, flag: str = "--seed") -> None:
    """One-line InputError for a seed outside [0, SEED_MAX]."""
    if not 0 <= seed <= SEED_MAX:
        raise InputError(f"{flag} must be in [0, {SEED_MAX}], got {seed}")
