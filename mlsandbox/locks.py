"""Work that one process does for all: a lock file per piece of work, and a word while waiting for it.

Two commands started at once on one workspace (two terminals, a notebook and the command line)
would otherwise both compute the same stats or train the same cell. The one that takes the lock
does the work; the other waits, says for what, and then finds the work done. A process that dies
releases its locks (they are ``flock`` locks), so a ``kill -9`` never leaves one held. A process
that finished the work may also leave a mark beside the lock, for processes that looked for the
work's result before it was there.
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


#: How far the clocks of processes that share a workspace (over a network file system) may differ.
CLOCK_SKEW_S = 60.0


def mark_done(lock: Path) -> None:
    """Mark the work of the lock file ``lock`` done (a ``.done`` file beside it)."""
    _mark(lock).touch()


def marked_done_since(lock: Path, since: float) -> bool:
    """Whether the work of ``lock`` was marked done after the wall time ``since`` (clock skew allowed
    for). Whoever looked for the work's result at ``since`` would have found a result marked earlier,
    so only a later mark is news to it; a mark that outlived its result (a deleted store) is not."""
    try:
        return _mark(lock).stat().st_mtime >= since - CLOCK_SKEW_S
    except FileNotFoundError:
        return False


def _mark(lock: Path) -> Path:
    return lock.with_suffix(".done")
