"""Files written whole or not at all, and the leftovers of writers that were killed.

A later run reuses what an earlier one wrote (stats checkpoints, pool files, tokenizers, converted
models, exported recipes), so a kill or a machine crash must never leave a half-written file
under its final name. Each is written to a temporary name beside it that carries the writer's
host and process id, flushed to disk, and renamed into place: a reader sees the old state or the
new one. A killed writer leaves only its temporary, which the next writer into that folder
removes once no process of that id runs on this machine. "This machine" is the host name, the
boot and the pid namespace together: containers that share a disk and a host name, each with its
own pids, never take each other's live writers for dead ones.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path


def machine() -> str:
    """``<boot id>/<pid namespace>`` (Linux): the processes that see the same pids; empty elsewhere."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""
    return f"{boot}/{namespace}"


#: Cleaned up leftovers once per folder and process: listing a folder of thousands of pool
#: files for every write would cost more than the writes.
_SWEPT: set[Path] = set()
_SCRATCH_SWEPT: set[Path] = set()  # temporary directories swept of dead processes' scratch folders
_HERE = hashlib.sha256(f"{socket.gethostname()}|{machine()}".encode()).hexdigest()[:12]
_MARK = f".tmp-{_HERE}-"
_COMPANIONS = {"", "journal", "wal", "shm"}
_SCRATCH_PREFIX = f"mlsandbox-{_HERE}-"
_EARLIER_CELL_PREFIX = f"mlsandbox-cell-{_HERE}-"  # cell folders of earlier versions, swept too


@contextlib.contextmanager
def published(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write (a file or a directory); once the block
    returns, it is flushed to disk and renamed to ``path``.

    If the block raises, the temporary is removed and ``path`` is untouched. A directory that
    another process published first wins: ours is dropped (both are the same conversion).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep(path.parent)
    tmp = temporary(path)
    _remove(tmp)  # left by an earlier process that had this pid
    try:
        yield tmp
        sync(tmp)
    except BaseException:
        _remove(tmp)
        raise
    try:
        os.replace(tmp, path)
    except OSError:
        _remove(tmp)
        if not path.is_dir():
            raise


def temporary(path: Path, step: str = "") -> Path:
    """This process's temporary name for ``path`` (``step`` tells a writer's several apart): one that
    :func:`sweep` removes once this process no longer runs."""
    return path.with_name(f"{path.name}{step}{_MARK}{os.getpid()}")


def sweep(folder: Path) -> None:
    """Remove the temporaries that writers on this machine left in ``folder`` when they were killed."""
    if folder in _SWEPT:
        return
    _SWEPT.add(folder)
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            head, mark, tail = entry.name.rpartition(_MARK)
            pid, _, suffix = tail.partition("-")  # SQLite adds -journal, -wal, -shm beside a database being built
            if mark and head and pid.isdigit() and suffix in _COMPANIONS and not pid_exists(int(pid)):
                _remove(Path(entry.path))


@contextlib.contextmanager
def scratch_folder(use: str) -> Iterator[Path]:
    """A scratch folder in the system's temporary directory (a cell's work, figures and tables on
    their way to a run's artifacts), removed when the block ends; those of processes killed
    outright are removed by the next scratch folder made on this machine. ``use`` names it."""
    root = Path(tempfile.gettempdir())
    if root not in _SCRATCH_SWEPT:
        _SCRATCH_SWEPT.add(root)
        for prefix in (_SCRATCH_PREFIX, _EARLIER_CELL_PREFIX):
            for leftover in root.glob(f"{prefix}*"):
                pid = leftover.name[len(prefix):].partition("-")[0]
                if pid.isdigit() and not pid_exists(int(pid)):
                    _remove(leftover)
    # A library's threads may still write into it when the block is interrupted (MLflow's downloads at a
    # Ctrl-C): its removal then fails, which must not replace the interruption; the next sweep removes it.
    with tempfile.TemporaryDirectory(prefix=f"{_SCRATCH_PREFIX}{os.getpid()}-{use}-", ignore_cleanup_errors=True) as tmp:
        yield Path(tmp)


def pid_exists(pid: int) -> bool:
    """Whether a process ``pid`` exists on this machine (another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    except (OSError, OverflowError):  # not a pid this system can have
        return False
    return True


def sync(path: Path) -> None:
    """Flush ``path`` (a file, or every file under a folder) to disk."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    for file in files:
        fd = os.open(file, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
