"""Work that one process does for all: a lock file per piece of work, and a word while waiting for it.

Two commands started at once on one workspace (two terminals, a notebook and the command line)
would otherwise both compute the same stats or train the same cell. The one that takes the lock
does the work; the other waits, says for what, and then finds the work done. A process that dies
releases its locks (they are ``flock`` locks), so a ``kill -9`` never leaves one held.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

#: Shown under ``--quiet`` too: a command that waits looks stalled otherwise.
log = logging.getLogger("mlsandbox.progress")
#: Seconds between the lines of a wait (the progress lines' longest gap, commands.md).
WAIT_LINE_S = 30.0


@contextmanager
def exclusive(path: Path, what: str) -> Iterator[bool]:
    """Hold the lock file ``path`` (made with its folder where missing); while another process of
    this machine holds it, one line says that this one waits for ``what``. Yields whether it had
    to wait: the other process may have done the work meanwhile."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path))
    waited = False
    try:
        lock.acquire(timeout=0)
    except Timeout:
        waited, started = True, time.monotonic()
        log.info("waiting for another process, which holds %s, to finish %s", path, what)
        while not _acquired(lock, WAIT_LINE_S):  # a line every WAIT_LINE_S: a silent command looks stalled
            log.info("still waiting (%.0f s) for another process, which holds %s, to finish %s",
                     time.monotonic() - started, path, what)
    try:
        yield waited
    finally:
        lock.release()


def _acquired(lock: FileLock, timeout: float) -> bool:
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        return False
    return True
