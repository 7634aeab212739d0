"""One error hierarchy for the whole package, and one way to describe a validation error.

The command line maps :class:`InvalidInputError` (and the model errors a user fixes by changing
their setup) to exit code 2 with a one-line message; anything else is a bug (exit code 1).
Each error lives here, at the bottom of the layers, so that every layer raises the same classes.
"""

from __future__ import annotations

import difflib
import signal
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import ValidationError


class SandboxError(Exception):
    """Base of every error mlsandbox raises on purpose."""


class InvalidInputError(SandboxError, ValueError):
    """Input the user can fix: a spec, a dataset, a pool or recipe setting, a command-line value."""


class SpecError(InvalidInputError):
    """The experiment spec (or a value given for it) is invalid."""


class DataError(InvalidInputError):
    """A dataset could not be read as asked; the message names the file and, where known, the line."""


class PoolError(InvalidInputError):
    """A pool cannot be built as asked (too small, empty, unknown stat)."""


class RecipeError(InvalidInputError):
    """A recipe, a recipe file or a Data-Juicer config cannot be read or used as asked."""


class InvalidRunError(InvalidInputError):
    """A run id given by the user names no run of the tracking store, or a run of another kind
    than the command takes; the message names the run id and the kind expected."""


class OpError(InvalidInputError):
    """An OP of the user's (a plug-in: not one of mlsandbox's own) raised while computing its stats,
    or broke its contract (its ``stat_keys``, one value per sample, no NaN); the message names it."""


class Terminated(KeyboardInterrupt):
    """The process was asked to stop by a signal (SIGTERM from ``kill``, ``timeout``, a scheduler,
    ``docker stop``). A :class:`KeyboardInterrupt`, so every clean-up of an interruption runs;
    the command line installs the handler that raises it and exits with ``128 + signum``."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = f"signal {signum}"
        super().__init__(f"terminated by {name}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    def __reduce__(self) -> tuple[type[Terminated], tuple[int]]:
        return type(self), (self.signum,)


def interruption_reason(err: BaseException) -> str:
    """``terminated by SIGTERM`` for :class:`Terminated`, ``interrupted by SIGINT (Ctrl-C)`` otherwise."""
    err = as_received(err) if isinstance(err, KeyboardInterrupt) else err
    return str(err) if isinstance(err, Terminated) else "interrupted by SIGINT (Ctrl-C)"


#: The signal the command line's handler turned into :class:`Terminated` in this process, if any.
_received: list[int] = []


def note_signal(signum: int | None) -> None:
    """Record (or, with None, forget) the signal a handler is about to raise as :class:`Terminated`."""
    _received[:] = [] if signum is None else [signum]


def as_received(err: KeyboardInterrupt) -> KeyboardInterrupt:
    """``err``, or the :class:`Terminated` that a SIGTERM raised where a library replaced it with a
    plain ``KeyboardInterrupt`` (Ray's ``wait`` does): a terminated command must not read as Ctrl-C."""
    return Terminated(_received[0]) if _received and not isinstance(err, Terminated) else err


class KeyValueError(ValueError):
    """A section validator's complaint about one of its keys: reported at that key, with its value,
    as a field's own error is (a check that reads the section's raw input has no field location)."""

    def __init__(self, key: str, value: Any, message: str) -> None:
        super().__init__(message)
        self.key, self.value = key, value


class OpParamsError(ValueError):
    """An OP's params are invalid; ``problems`` holds one ``<param>: <what is wrong> (got ...)`` each,
    so that a spec lists them on lines of their own."""

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems)


class ModelUnavailableError(SandboxError, RuntimeError):
    """A model or the package it needs is missing; the message says what to install or set."""


class TrainingError(SandboxError, RuntimeError):
    """A training or evaluation run failed; ``log_tail`` holds the last lines of its output."""

    def __init__(self, reason: str, log_tail: str = "") -> None:
        self.reason = reason
        self.log_tail = log_tail
        message = reason if not log_tail else f"{reason}\n--- log tail ---\n{log_tail}"
        super().__init__(message)


class EvaluationError(TrainingError):
    """Scoring a trained model failed (bad benchmark, failing evaluator command)."""


class TrainingPruned(SandboxError):
    """The job's ``report`` callback asked to stop; raised so no partial model is mistaken
    for a finished one."""

    def __init__(self, step: int, value: float) -> None:
        self.step = step
        self.value = value
        super().__init__(f"training pruned at step {step} (intermediate score {value:.6g})")


#: Errors the command line reports in one line with exit code 2.
USER_ERRORS: tuple[type[Exception], ...] = (InvalidInputError, EvaluationError, ModelUnavailableError)


def describe_validation_error(
    err: ValidationError,
    raw: Any = None,
    allowed_keys: Callable[[tuple[Any, ...]], Sequence[str]] | None = None,
    shown: Callable[[tuple[Any, ...]], tuple[Any, ...]] | None = None,
) -> list[str]:
    """One line per problem: ``<dotted key>: <what is wrong> (got <value>)``.

    ``raw`` is the validated input: list items that carry a ``name`` are labelled with it
    (``ops[2] (stopwords_filter).params``). ``allowed_keys`` lists the keys allowed at an
    error's location, for the message about an unknown key; ``shown`` turns a location into the
    one the user wrote (without the tags pydantic adds for tagged unions).
    """
    lines = []
    for e in err.errors():
        msg = e["msg"].removeprefix("Value error, ")
        if isinstance(keyed := e.get("ctx", {}).get("error"), KeyValueError):
            e["loc"], e["input"] = (*e["loc"], keyed.key), keyed.value
        if e["type"] == "extra_forbidden":
            allowed = allowed_keys(e["loc"]) if allowed_keys else ()
            close = difflib.get_close_matches(str(e["loc"][-1]), allowed, n=1) if e["loc"] else []
            msg = ("unknown key" + (f" (did you mean {close[0]!r}?)" if close else "")
                   + (f"; allowed keys: {', '.join(allowed)}" if allowed else ""))
        elif e["type"] == "literal_error":
            msg = f"not allowed; {msg.replace('Input should be', 'expected')}"
        elif e["type"] == "union_tag_not_found":
            msg = f"needs a {e.get('ctx', {}).get('discriminator', 'type')} key"
        elif e["type"] == "string_type" and isinstance(e.get("input"), (bool, int, float)):
            msg += " (YAML reads 001, 1.0, yes or off unquoted as a number or a boolean: quote it)"
        if shown is not None:
            e["loc"] = shown(e["loc"])
        if not e["loc"]:  # a check across keys: its message names them; the input is the whole spec
            lines.append(msg)
            continue
        if e["type"] == "missing":  # the input is the mapping that lacks the key: not worth printing
            lines.append(f"{dotted_key(e['loc'], raw)}: required key missing")
            continue
        given = e.get("input")
        if (isinstance(given, dict) and not e["type"].endswith("_type")) or "env" in e["loc"]:
            # a check across a section's keys names them, and a section, like a command's env, may hold secrets
            lines.append(f"{dotted_key(e['loc'], raw)}: {msg}")
            continue
        said = f"got {given!r}" in msg  # a validator's own message may quote the value already
        lines.append(f"{dotted_key(e['loc'], raw)}: {msg}" + ("" if said else f" (got {given!r})"))
    return lines


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (drivers and parsers add lines of context), or its
    type's name when it has none: what a one-line error quotes of a library's error."""
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def listed(problems: Sequence[str]) -> str:
    """Problems after a message's header: ``": <problem>"`` for one, an indented line each for several."""
    if len(problems) == 1:
        return f": {problems[0]}"
    return ":\n" + "\n".join(f"  - {p}" for p in problems)


def dotted_key(loc: Sequence[Any], raw: Any = None) -> str:
    """A pydantic error location as a dotted key, list items named by their ``name`` where present."""
    parts: list[str] = []
    node = raw
    for p in loc:
        if isinstance(p, int):
            label = f"[{p}]"
            item = node[p] if isinstance(node, list) and p < len(node) else None
            if isinstance(item, dict) and "name" in item:
                label += f" ({item['name']})"
            parts.append(label)
            node = item
        else:
            parts.append(("." if parts else "") + str(p))
            node = node.get(p) if isinstance(node, dict) else None
    return "".join(parts) or "<root>"
