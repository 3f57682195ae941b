"""Where cells run. A backend maps cells to their rows, yielding (cell, rows) as cells finish;
the runner writes each finished cell atomically, so the backend never touches the store.

* InProcess — the embedded default: cells in order, in this process.
* ProcessPool(workers) — a local pool of `spawn`ed processes (JAX is not fork-safe).

A task that raises is retried `retries` times; if it still fails, its rows are recorded with
`failed = true` and NaN metrics (never lost, never presented as a result). A pool whose worker
dies is rebuilt and the unfinished cells resubmitted. Results do not depend on the backend:
a cell's numbers derive only from (seed, setting, n, replicate).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from moestat import __version__
from moestat.experiments.config import ExperimentConfig
from moestat.experiments.sweep import Cell, run_cell

RETRIES = 2


def failed_rows(config: ExperimentConfig, cell: Cell) -> dict[str, list]:
    reps = list(range(cell.start, cell.stop))
    k = len(reps)
    nan = [float("nan")] * k
    rows = {"setting": [cell.setting] * k, "n": [cell.n] * k, "replicate": reps,
            "seed": [config.seed] * k, "objective": nan, "loglik": nan, "n_iter": [0] * k,
            "converged": [False] * k, "at_bound": [False] * k, "floored": [False] * k,
            "failed": [True] * k, "fit_seconds": nan, "version": [__version__] * k}
    rows.update({f"metric.{m}": nan for m in config.metrics})
    return rows


def run_cell_safely(config: ExperimentConfig, cell: Cell) -> dict[str, list]:
    """run_cell with retries; failed rows after the last attempt."""
    for _ in range(RETRIES + 1):
        try:
            return run_cell(config, cell)
        except Exception:  # noqa: BLE001 - recorded as failed below, never lost
            continue
    return failed_rows(config, cell)


class InProcess:
    name = "in-process"

    def map_cells(self, config: ExperimentConfig, cells: list[Cell]) -> Iterator:
        for cell in cells:
            yield cell, run_cell_safely(config, cell)


class ProcessPool:
    name = "process pool"

    def __init__(self, workers: int):
        self.workers = workers

    def map_cells(self, config: ExperimentConfig, cells: list[Cell]) -> Iterator:
        pending = list(cells)
        for _ in range(RETRIES + 1):
            if not pending:
                return
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(self.workers, mp_context=ctx) as pool:
                futures = {pool.submit(run_cell_safely, config, c): c for c in pending}
                try:
                    while futures:
                        done, _ = wait(futures, return_when=FIRST_COMPLETED)
                        for f in done:
                            cell = futures.pop(f)
                            pending.remove(cell)
                            yield cell, f.result()
                except BrokenProcessPool:
                    continue  # a worker died: rebuild the pool for what is left
        for cell in pending:  # the pool kept breaking: record, do not lose
            yield cell, failed_rows(config, cell)
