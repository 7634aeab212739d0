"""Running an external command as the sandbox's trainers and evaluators do: an argv list without a
shell, output to a log file, a timeout, and its whole process group stopped with it."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path

from mlsandbox.credentials import scrub_known
from mlsandbox.errors import TrainingError

LOG_TAIL_LINES = 40
_LAST_LINE = 300  # characters of the log's last line quoted in a failure's reason


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a log file ('' if it does not exist)."""
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            return "".join(deque(handle, maxlen=lines)).rstrip("\n")
    except FileNotFoundError:
        return ""


def run_logged(
    argv: Sequence[str],
    *,
    cwd: Path,
    log_file: Path,
    timeout_s: float,
    env: Mapping[str, str] | None = None,
) -> None:
    """Run ``argv`` (no shell) with output to ``log_file``; raise TrainingError on failure."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, **(env or {})}
    with log_file.open("w", encoding="utf-8") as log:
        try:
            # A new session lets a timeout kill the whole process group, grandchildren included.
            proc = subprocess.Popen(
                list(argv),
                cwd=cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=full_env,
                start_new_session=True,
            )
        except OSError as exc:
            if exc.errno == errno.ENOENT and Path(argv[0]).is_file():  # the error names the script, not what is missing
                raise TrainingError(f"could not start {argv[0]!r}: the interpreter its #! line names "
                                    "was not found") from None
            raise TrainingError(f"could not start {argv[0]!r}: {exc}") from None
        try:
            returncode = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            raise _failure(f"command timed out after {timeout_s:g} s", argv, log_file) from None
        except BaseException:
            # Ctrl-C or SIGTERM of the sandbox: its trainer (in a session of its own) goes too.
            _kill_group(proc)
            raise
    if returncode != 0:
        raise _failure(f"command exited with status {returncode}", argv, log_file)


def _failure(what: str, argv: Sequence[str], log_file: Path) -> TrainingError:
    """``what`` happened, with the log's last meaningful line before the (long, cut) command line:
    the reason shown for a FAILED cell must say why, not only what ran."""
    tail = log_tail(log_file)
    said = [line.strip() for line in tail.splitlines() if line.strip(" \t^~=-")]
    last = f" ({said[-1][:_LAST_LINE]})" if said else ""
    shown = " ".join(argv)
    return TrainingError(f"{what}{last}: {shown if len(shown) <= 300 else shown[:297] + '...'}", tail)


def scrub_file(path: Path) -> None:
    """``path`` rewritten line by line (a long log stays out of memory) through :func:`~mlsandbox.credentials.scrub_known`."""
    if not path.is_file():
        return
    scrubbed = path.with_name(path.name + ".scrubbed")
    with path.open(errors="surrogateescape") as src, scrubbed.open("w", errors="surrogateescape") as dst:
        dst.writelines(scrub_known(line) for line in src)
    scrubbed.replace(path)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
