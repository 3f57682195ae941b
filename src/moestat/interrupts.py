"""Ctrl-C during a sweep: the cells at hand (one in-process, one per pool worker) finish and
are written, no new cell starts, then the command stops with exit code 130 and says that a
rerun resumes; a second Ctrl-C stops at once (cells are written atomically, so nothing finished
is lost either way). On a Dask cluster the sweep stops after the cell just written and cancels
the rest: the scheduler, not moestat, decides which tasks are at hand.

Python's default handler raises KeyboardInterrupt wherever the main thread happens to be —
inside a garbage-collector callback of JAX it is printed and ignored, and with compile
threads still running the interpreter could abort while finalising — so the sweep installs
this handler and checks the flag between cells instead.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

STOP_NOW_EXIT = 130
_requested = threading.Event()


def _handler(signum, frame) -> None:
    if _requested.is_set():
        print("interrupted again: stopping now; finished cells are kept, a rerun resumes",
              file=sys.stderr, flush=True)
        os._exit(STOP_NOW_EXIT)
    request()
    print("interrupt: finishing the cells at hand, then stopping (Ctrl-C again to stop now)",
          file=sys.stderr, flush=True)


def stop_between_cells() -> None:
    """Install the handler (main thread only; elsewhere Python's default stays)."""
    _requested.clear()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _handler)


def request() -> None:
    """Ask the sweep to stop between cells (what the first Ctrl-C does)."""
    _requested.set()


def requested() -> bool:
    """Has Ctrl-C been pressed since the sweep began? (Backends start no cell after it.)"""
    return _requested.is_set()


def check() -> None:
    """Raise KeyboardInterrupt at this safe point when an interrupt was requested."""
    if requested():
        raise KeyboardInterrupt
