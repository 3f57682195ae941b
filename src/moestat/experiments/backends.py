"""Where cells run. A backend maps cells to their rows, yielding (cell, rows) as cells finish;
the runner writes each finished cell atomically, so the backend never touches the store.

* InProcess — the embedded default: cells in order, in this process.
* ProcessPool(workers) — a local pool of `spawn`ed processes (JAX is not fork-safe).
* DaskCluster(address | None, workers) — a Dask distributed cluster: an existing scheduler at
  `tcp://HOST:PORT` (its workers must have moestat installed), or a `LocalCluster` of `workers`
  single-threaded worker processes on 127.0.0.1 started for the sweep and closed after it.
  A worker that dies mid-task is replaced (by its nanny) and the scheduler reruns its tasks.

A task that raises is retried `retries` times; if it still fails, its rows are recorded with
`failed = true` and null metrics (never lost, never presented as a result). A pool whose worker
dies is rebuilt and the unfinished cells resubmitted. After Ctrl-C (moestat.interrupts) a
backend starts no new cell: the pool's and the in-process cells at hand finish and are
yielded; a Dask sweep stops after the cell just yielded and cancels its other tasks.
Results do not depend on the backend: a cell's numbers derive only from (seed, setting, n,
replicate).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from moestat import interrupts
from moestat.cache import enable_compilation_cache
from moestat.device import select_device
from moestat.errors import InputError, require
from moestat.experiments.cell import run_cell
from moestat.experiments.config import ExperimentConfig
from moestat.experiments.grid import Cell
from moestat.experiments.rows import failed_rows

RETRIES = 2


def run_cell_safely(config: ExperimentConfig, cell: Cell) -> dict[str, list]:
    """run_cell with retries; failed rows after the last attempt."""
    for _ in range(RETRIES + 1):
        try:
            return run_cell(config, cell)
        except Exception:  # noqa: BLE001 - recorded as failed below, never lost
            continue
    return failed_rows(config, cell)


WATCH_PARENT_SECONDS = 1.0


def worker_setup() -> None:
    """Pool workers leave Ctrl-C to the parent, which stops between cells
    (moestat.interrupts; a worker's KeyboardInterrupt would fail its cell), and die with it:
    a watchdog thread exits the worker once its parent is gone (kill -9 of `moestat run`
    must not leave workers computing for nobody)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(WATCH_PARENT_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="moestat-parent-watch", daemon=True).start()


def run_cell_in_worker(config: ExperimentConfig, cell: Cell) -> dict[str, list]:
    """run_cell_safely in a pool / Dask worker process, which shares the CLI's on-disk XLA
    cache (the in-process backend leaves the caller's JAX configuration alone)."""
    enable_compilation_cache()
    select_device()  # the parent's --device, inherited through $MOESTAT_DEVICE
    return run_cell_safely(config, cell)


class InProcess:
    name = "in-process"

    def map_cells(self, config: ExperimentConfig, cells: list[Cell]) -> Iterator:
        for cell in cells:
            if interrupts.requested():
                return
            yield cell, run_cell_safely(config, cell)


class ProcessPool:
    name = "process pool"

    def __init__(self, workers: int):
        self.workers = workers

    def map_cells(self, config: ExperimentConfig, cells: list[Cell]) -> Iterator:
        pending = list(cells)
        for _ in range(RETRIES + 1):
            if not pending or interrupts.requested():
                return
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(self.workers, mp_context=ctx,
                                     initializer=worker_setup) as pool:
                try:
                    yield from self._cells_at_hand(pool, config, pending)
                    return  # every cell ran, or an interrupt stopped new ones
                except BrokenProcessPool:
                    continue  # a worker died: rebuild the pool for what is left
                except GeneratorExit:  # the caller stopped: start nothing more
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
        for cell in pending:  # the pool kept breaking: record, do not lose
            yield cell, failed_rows(config, cell)

    def _cells_at_hand(self, pool, config: ExperimentConfig, pending: list[Cell]) -> Iterator:
        """At most one cell per worker in the pool, none queued behind them, so that after
        Ctrl-C the cells at hand finish and are yielded (written) and no other starts;
        finished cells leave `pending`."""
        waiting, running = iter(list(pending)), {}

        def start_more():
            while len(running) < self.workers and not interrupts.requested():
                cell = next(waiting, None)
                if cell is None:
                    return
                running[pool.submit(run_cell_in_worker, config, cell)] = cell

        start_more()
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for f in done:
                cell, rows = running.pop(f), f.result()
                pending.remove(cell)
                yield cell, rows
            start_more()


SCHEMES = ("tcp://", "tls://", "inproc://", "ucx://", "ws://", "wss://")
CONNECT_TIMEOUT = "20s"


def check_scheduler_address(address: str) -> None:
    if address != "local" and not address.startswith(SCHEMES):
        raise InputError(f"--scheduler must be 'local' or an address like tcp://HOST:PORT, "
                         f"got {address!r}")


class DaskCluster:
    """Cells as Dask futures; results yielded in completion order."""

    name = "dask"

    def __init__(self, address: str = "local", workers: int = 2):
        check_scheduler_address(address)
        require("distributed", "dask")
        self.address, self.workers = address, workers

    def _connect(self, stack):
        import logging

        from distributed import Client, LocalCluster

        if self.address == "local":
            cluster = stack.enter_context(LocalCluster(
                n_workers=self.workers, threads_per_worker=1, processes=True,
                host="127.0.0.1", dashboard_address=None, silence_logs=logging.ERROR))
            return stack.enter_context(Client(cluster))
        try:
            return stack.enter_context(Client(self.address, timeout=CONNECT_TIMEOUT))
        except OSError as e:
            raise InputError(f"cannot reach the Dask scheduler at {self.address} "
                             f"({type(e).__name__})") from None

    def map_cells(self, config: ExperimentConfig, cells: list[Cell]) -> Iterator:
        from contextlib import ExitStack

        from distributed import as_completed

        with ExitStack() as stack:
            client = self._connect(stack)
            submit = lambda c: client.submit(run_cell_in_worker, config, c, pure=False)  # noqa: E731
            futures = {submit(c): (c, 0) for c in cells}
            queue = as_completed(list(futures))
            for fut in queue:
                cell, attempt = futures.pop(fut)
                try:
                    rows = fut.result()
                except Exception:  # noqa: BLE001 - e.g. KilledWorker: the task killed workers
                    if attempt < RETRIES:
                        again = submit(cell)
                        futures[again] = (cell, attempt + 1)
                        queue.add(again)
                        continue
                    rows = failed_rows(config, cell)
                yield cell, rows
                if interrupts.requested():
                    client.cancel(list(futures))
                    return


def choose_backend(workers: int, scheduler: str | None):
    """In-process (workers 0), a local process pool, a local Dask cluster (scheduler
    'local') or a remote one (scheduler tcp://HOST:PORT, with its own workers)."""
    if scheduler is None:
        return ProcessPool(workers) if workers > 0 else InProcess()
    if scheduler == "local":
        return DaskCluster("local", workers or 2)
    if workers:
        raise InputError("--workers applies to local runs; a remote --scheduler has its own "
                         "workers")
    return DaskCluster(scheduler)
