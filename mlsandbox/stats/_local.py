"""The local stats engine: batches in this process, or in worker processes on this machine."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from logging.handlers import QueueHandler, QueueListener
from multiprocessing import get_context
from typing import Any

import numpy as np

from mlsandbox.runtime import resolve_workers
from mlsandbox.stats._passes import PassJob, batches, compute_batch, op_specs

log = logging.getLogger(__name__)


class LocalEngine:
    """Worker processes for every pass of one ``compute_stats`` call, started on first use.

    One pool serves all passes, so each worker imports its libraries once. Workers log through
    a queue to this process's handlers: a model's loading line shows in ``--quiet`` logs too.
    """

    def __init__(self, workers: int) -> None:
        self.count = resolve_workers(workers)
        self._pool: ProcessPoolExecutor | None = None
        self._listener: QueueListener | None = None

    @property
    def parallel(self) -> int:
        return self.count

    def run(self, job: PassJob) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        """Each batch's stats, in order, as it finishes."""
        specs = op_specs(job.ops)
        parts = batches(job.table, job.todo, job.batch_size, job.columns)
        pool = self._pool_for(len(job.todo))
        outputs = ((compute_batch(specs, part) for part in parts) if pool is None
                   else pool.map(compute_batch, [specs] * len(job.todo), parts))
        yield from zip(job.todo, outputs)

    def _pool_for(self, batches: int) -> ProcessPoolExecutor | None:
        """The pool, or None where one process is enough (one worker asked, or one batch)."""
        if self.count <= 1 or batches <= 1:
            return None
        if self._pool is None:
            log.info("starting %d stats workers (each loads its libraries and models first)", self.count)
            context = get_context("spawn")  # workers must not inherit a parent's threads (torch, tokenizers) or locks
            queue = context.Queue()
            self._listener = QueueListener(queue, _Relay())
            self._listener.start()
            self._pool = ProcessPoolExecutor(self.count, mp_context=context, initializer=_init_worker,
                                             initargs=(queue, logging.getLogger().getEffectiveLevel(), os.getpid()))
            with _children_ignore_ctrl_c():  # each submit starts a worker while none is idle yet
                for _ in range(self.count):
                    self._pool.submit(int)
        return self._pool

    def close(self, wait: bool = True) -> None:
        """Stop the workers; batches not started are cancelled (an error leaves them to this). Without
        ``wait`` (the command was stopped) the workers end at once: waiting for their batches made a
        SIGTERM take 10 s or more, and the process's exit would wait for them all the same."""
        if self._pool is not None:
            if not wait:
                for process in list(self._pool._processes.values()):  # the executor offers no way to stop them
                    process.terminate()
                # Its feeder thread may be blocked writing work to a pipe no worker reads any more: joined at
                # exit, as multiprocessing does, it kept the stopped command from ever exiting.
                self._pool._call_queue.cancel_join_thread()  # type: ignore[attr-defined]
            self._pool.shutdown(wait=wait, cancel_futures=True)
        if self._listener is not None:
            self._listener.stop()


@contextmanager
def _children_ignore_ctrl_c() -> Iterator[None]:
    """Worker processes started in here ignore SIGINT (a spawned process keeps an ignored signal): a
    terminal's Ctrl-C reaches the whole process group, and a worker still importing its libraries
    printed a traceback of its own. This process stops them (``close``)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class _Relay(logging.Handler):
    """Hands a worker's log record to the logger of the same name here (its level and handlers)."""

    def emit(self, record: logging.LogRecord) -> None:
        logger = logging.getLogger(record.name)
        if logger.isEnabledFor(record.levelno):
            logger.handle(record)


def _init_worker(queue: Any, level: int, parent: int) -> None:
    """One BLAS/torch thread per worker (N workers on N cores, never N x N threads); log records
    go to the parent, which shows them with its own handlers; the worker ends with its parent."""
    threading.Thread(target=_exit_without, args=(parent,), name="exit-with-parent", daemon=True).start()
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"
    root = logging.getLogger()
    root.handlers = [QueueHandler(queue)]
    root.setLevel(level)


def _exit_without(parent: int) -> None:
    """Exit once ``parent`` is gone: a parent killed with SIGKILL cannot stop its workers, which
    would otherwise wait for work (a loaded model in memory) for good."""
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_S)
    os._exit(1)


PARENT_CHECK_S = 1.0
