"""How the command line fails: input errors as one line and exit code 2, interruptions (Ctrl-C,
SIGTERM) as KILLED runs and exit codes 130/143."""

from __future__ import annotations

import contextlib
import errno
import importlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import wraps
from types import FrameType
from typing import Any, ParamSpec, TypeVar

import typer
from typer.core import TyperGroup

from mlsandbox.credentials import Scrubber, scrubbed_output, secrets_in
from mlsandbox.errors import USER_ERRORS, Terminated, TrainingError, as_received, interruption_reason, note_signal

log = logging.getLogger("mlsandbox.cli")
# click's exceptions, wherever this typer takes click from (newer releases carry their own copy).
_click = importlib.import_module(typer.BadParameter.__module__)

EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_INTERRUPTED = 130

P = ParamSpec("P")


def exit_failed(failure: str | None) -> None:
    """Print the failure (one line) in red on stderr and exit 2 if there is one: the work ran, the
    runs that record it ended normally, and what failed (a trainer that crashed in a cell, every
    trial) is the user's to fix, as bad input is."""
    if failure:
        typer.secho(failure, fg="red", err=True)
        raise typer.Exit(EXIT_INVALID)
R = TypeVar("R")


class OneLineUsageErrors(TyperGroup):
    """A usage error (an unknown option, a missing value, a bad choice) reads as one line, like
    every other input error, instead of click's usage block: ``error: <what> (see '<command> --help')``."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, windows_expand_args: bool = True, **extra: Any) -> Any:
        options = {"complete_var": complete_var, "windows_expand_args": windows_expand_args, **extra}
        if not standalone_mode:
            return super().main(args, prog_name, standalone_mode=False, **options)
        try:
            code = super().main(args, prog_name, standalone_mode=False, **options)
        except _click.NoArgsIsHelpError as err:  # a bare command: its help
            err.show()
            sys.exit(err.exit_code)
        except _click.ClickException as err:
            command = err.ctx.command_path if isinstance(err, _click.UsageError) and err.ctx else None
            if command is None and isinstance(err, _click.UsageError):  # an option's missing value has no context
                given = list(sys.argv[1:] if args is None else args)
                named = next((a for a in given if a in self.commands), None)
                command = " ".join(filter(None, [prog_name or "mlsandbox", named]))
            see = f" (see '{command} --help')" if command else ""
            if isinstance(err, _click.NoSuchOption) and err.option_name in self._global_options():
                see = f" ({err.option_name} goes before the command: mlsandbox {err.option_name} … <command>)"
            typer.secho(f"error: {err.format_message()}{see}", fg="red", err=True)
            sys.exit(err.exit_code)
        except typer.Abort:
            typer.echo("aborted", err=True)
            sys.exit(EXIT_FAILED)
        sys.exit(code if isinstance(code, int) else 0)

    def _global_options(self) -> set[str]:
        """The options of ``mlsandbox`` itself (``--log-level``), which a command does not take."""
        return {name for param in self.params for name in getattr(param, "opts", ())}


def handles_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn known input errors into a one-line message and exit code 2, and SIGTERM into an
    interruption: the command's runs end KILLED and it exits with 143 (130 for SIGINT). While the
    command runs, its logs and warnings (MLflow's retries included) are scrubbed of the tracking
    URI's password."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        scrub = Scrubber(secrets_in(os.environ.get("MLFLOW_TRACKING_URI")))
        try:
            with scrubbed_output(scrub), _interruptions():
                try:
                    return func(*args, **kwargs)
                except KeyboardInterrupt as interrupt:
                    err = as_received(interrupt)
                    code = err.exit_code if isinstance(err, Terminated) else EXIT_INTERRUPTED
                    try:
                        reason = _end_runs(err)
                    except KeyboardInterrupt:  # Ctrl-C again where a library replaced the shield: stop now, as after SIGKILL
                        typer.secho(f"{interruption_reason(err)}, and again during the clean-up: finished work is kept "
                                    "and reused on the next run, which ends the runs left RUNNING", err=True)
                        raise typer.Exit(code) from None
                    typer.secho(f"{reason}; finished work is kept and reused on the next run", err=True)
                    raise typer.Exit(code) from None
        except typer.Exit:  # an exit code chosen above: not an error (typer's Exit may be a RuntimeError)
            raise
        except USER_ERRORS as err:
            if isinstance(err, TrainingError) and err.log_tail:  # chatter (hidden by --quiet) before the one line
                log.info("the last lines of its output:\n%s", scrub(err.log_tail))
            reason = err.reason if isinstance(err, TrainingError) else str(err)
            typer.secho(f"error: {scrub(reason)}", fg="red", err=True)
            raise typer.Exit(EXIT_INVALID) from None
        except Exception as err:
            if (line := _lost_store(err) or _unusable(err)) is not None:
                typer.secho(f"error: {scrub(line)}", fg="red", err=True)
                raise typer.Exit(EXIT_INVALID) from None
            if scrub.leaks(err):  # a traceback is printed whole: its message (and its causes') must not hold it
                raise scrub.clean_error(err) from None
            raise

    return wrapper


def _lost_store(err: Exception) -> str | None:
    """One line for a tracking server that stopped answering mid-command (after MLflow's retries),
    instead of MLflow's chain of tracebacks; None for any other error."""
    from mlsandbox.errors import first_line
    from mlsandbox.tracking import store_lost

    if not store_lost(err):
        return None
    request = first_line(err).split(" with url:", 1)[0][:300]  # MLflow's message goes on with the query string
    return (f"the tracking server stopped answering ({request}); the work finished so far is kept: run the same "
            "command again once it answers")


#: A file the command could not use for a reason of this machine's, which its user can fix: said in one line.
_UNUSABLE = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def _unusable(err: BaseException) -> str | None:
    """One line for a file or folder the command could not use (no permission, a read-only or full
    disk: MLflow's artifact folder ``./mlruns`` in a folder one cannot write to), found down the chain
    of causes; None for any other error."""
    while err is not None:
        if isinstance(err, OSError) and err.errno in _UNUSABLE:
            what = f"cannot use {err.filename}: " if err.filename else ""
            return (f"{what}{err.strerror or err} (fix the permission or free the disk, or work where files can be "
                    "written, then run the same command again)")
        err = err.__cause__ or err.__context__  # type: ignore[assignment]
    return None


#: Shown at a second Ctrl-C while an interrupted command ends its runs; a third stops it at once.
AGAIN_TO_STOP = ("ending the runs KILLED before exiting; Ctrl-C again to stop at once (the next command "
                 "then ends the runs left RUNNING)")


@contextmanager
def _interruptions() -> Iterator[None]:
    """While a command runs, SIGTERM raises :class:`Terminated` (a KeyboardInterrupt) in the main
    thread, so it is cleaned up like Ctrl-C, and the clean-up is shielded (:class:`_Handlers`). Only
    the command line does this: a library user's own signal handling is left alone, and a signal
    the command was started with ignored (a background job of a shell script) stays ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handlers = _Handlers()
    note_signal(None)
    previous = {signum: signal.signal(signum, handler) for signum, handler in handlers.first.items()
                if signal.getsignal(signum) is not signal.SIG_IGN}
    handlers.managed = set(previous)
    previous_hook, sys.unraisablehook = sys.unraisablehook, handlers.resend_lost(sys.unraisablehook)
    try:
        yield
    finally:
        sys.unraisablehook = previous_hook
        for timer in handlers.timers:
            timer.cancel()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        note_signal(None)


class _Handlers:
    """The command's signal handlers. The first interruption raises; the clean-up after it (ending
    the runs KILLED with the reason) is shielded: a second SIGTERM is ignored, and a second Ctrl-C
    says that a third stops the command at once (then the next command ends the runs). Raised
    inside the clean-up, a second interruption left a run FAILED without its reason, and printed
    tracebacks from the finalisers it landed in.

    Python swallows an exception raised in a finaliser or a weakref callback ("Exception ignored
    in ..."); the first interruption, lost there, is sent again a moment later, when the finaliser
    is over, so an interrupted command never runs on as if nothing had happened."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.pressed = 0
        self.raised: KeyboardInterrupt | None = None  # the interruption a handler raised
        self.managed: set[int] = set()
        self.timers: list[threading.Timer] = []
        self.first: dict[int, Callable[[int, FrameType | None], None]] = {signal.SIGTERM: self.terminate,
                                                                          signal.SIGINT: self.interrupt}

    def shield(self) -> None:
        for signum in self.managed:
            signal.signal(signum, self.again if signum == signal.SIGINT else signal.SIG_IGN)

    def terminate(self, signum: int, frame: FrameType | None) -> None:
        if os.getpid() != self.pid:  # a forked worker inherited the handler: die as without it
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        self.shield()
        note_signal(signum)
        self.raised = Terminated(signum)
        raise self.raised

    def interrupt(self, signum: int, frame: FrameType | None) -> None:
        if os.getpid() != self.pid:  # a forked worker: Python's own handler
            signal.default_int_handler(signum, frame)
        self.shield()
        self.raised = KeyboardInterrupt()
        raise self.raised

    def again(self, signum: int, frame: FrameType | None) -> None:
        self.pressed += 1
        if self.pressed == 1:
            sys.stderr.write(AGAIN_TO_STOP + "\n")
            return
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(self.pid, signal.SIGINT)

    def resend_lost(self, previous_hook: Callable[[Any], object]) -> Callable[[Any], None]:
        def hook(unraisable: Any) -> None:
            lost = unraisable.exc_value
            if lost is None or lost is not self.raised or threading.current_thread() is not threading.main_thread():
                previous_hook(unraisable)
                return
            self.raised = None  # re-sent once: the handlers of a first interruption again, then the signal
            for signum in self.managed:
                signal.signal(signum, self.first[signum])
            signum = lost.signum if isinstance(lost, Terminated) else signal.SIGINT
            # Not from here: the handler would run inside this hook, where it is swallowed again.
            timer = threading.Timer(0.1, os.kill, (self.pid, signum))
            self.timers.append(timer)
            timer.start()
        return hook


def exit_at_a_signal(code: object) -> None:
    """From now on, SIGINT or SIGTERM end the process at once with exit code ``code`` (a
    ``SystemExit``'s): for Python's shutdown after a command is done, whose work is finished and
    reported, a second or two that a signal (a scheduler's timeout) made exit code 143; and a
    shutdown that hangs (a slow tracking server) can still be stopped."""
    status = 0 if code is None else code if isinstance(code, int) else 1

    def leave(signum: int, frame: FrameType | None) -> None:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(status)

    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(signum) is not signal.SIG_IGN:
                signal.signal(signum, leave)


def _end_runs(err: KeyboardInterrupt) -> str:
    """End the runs still active after an interruption as KILLED; the reason, in words."""
    reason = interruption_reason(err)
    if "mlflow" not in sys.modules:  # no run was started
        return reason
    try:
        from mlsandbox.tracking import end_active_runs, release_interrupted_work
    except Exception:  # the signal cut an import short (a module half set up): no run was started yet
        return reason
    release_interrupted_work(err)
    end_active_runs(reason)
    return reason
