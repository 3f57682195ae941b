"""Errors raised at the validation boundary.

`InputError` is a `ValueError` whose message is one line naming what is wrong; the CLI turns it
into exit code 2 without a traceback.
"""


class InputError(ValueError):
    """Invalid user input (data, configuration, argument). Message: one line."""
