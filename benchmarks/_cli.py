"""What the benchmark scripts share on the command line: counts checked as argparse reads them,
``--set key=value``, and the package's way of failing (``mlsandbox.cli._errors.handles_errors``):
bad input exits 2 with one ``error:`` line, SIGTERM and Ctrl-C end the MLflow runs KILLED (exit 143
and 130), and the tracking URI's password is never printed.

Only the standard library is imported here: ``text_ops.py`` imports this file in Data-Juicer's
interpreter too, where mlsandbox may not be installed.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from typing import Any, TypeVar

R = TypeVar("R")


def count(minimum: int = 1) -> Callable[[str], int]:
    """An argparse ``type=``: a whole number of at least ``minimum`` (argparse exits 2 otherwise)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def positive_float(text: str) -> float:
    """An argparse ``type=``: a finite number above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number above 0, got {text}")
    return value


def overrides(items: list[str]) -> dict[str, str]:
    """``--set key=value`` items as a mapping, as the package's commands read them (``load_spec``)."""
    from mlsandbox.errors import SpecError

    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SpecError(f"--set expects key=value, got {item!r}")
        out[key.strip()] = value
    return out


def typed_overrides(items: list[str]) -> dict[str, Any]:
    """``--set key=value`` items with YAML values, as the package's ``--set`` reads them (numbers,
    ``null``, ``true``; anything else a string); an empty value is null."""
    import yaml

    from mlsandbox.errors import SpecError, first_line

    typed: dict[str, Any] = {}
    for key, text in overrides(items).items():
        try:
            typed[key] = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise SpecError(f"--set {key}={text}: not a YAML value: {first_line(err)}") from None
    return typed


def one_line(err: Any, what: str) -> Exception:
    """A pydantic ``ValidationError`` as a one-line :class:`SpecError`: its first problem's key and message."""
    from mlsandbox.errors import SpecError, describe_validation_error

    problems = describe_validation_error(err)
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return SpecError(f"invalid {what}: {problems[0] if problems else err.title}{more}")


def validated(model: Callable[..., R], values: dict[str, Any], what: str) -> R:
    """``model(**values)`` (a pydantic spec), its validation error raised as :func:`one_line`."""
    from pydantic import ValidationError

    try:
        return model(**values)
    except ValidationError as err:
        raise one_line(err, what) from None


def run(main: Callable[[], R]) -> R:
    """Call ``main`` as the package's commands run: an input error (``mlsandbox.errors.USER_ERRORS``)
    exits 2 with one line, an interruption ends the active runs KILLED and exits 130 (Ctrl-C) or
    143 (SIGTERM). What ``main`` returns is returned."""
    import typer

    from mlsandbox.cli._errors import handles_errors

    try:
        return handles_errors(main)()
    except typer.Exit as done:  # what handles_errors raises for an input error or an interruption
        sys.stdout.flush()
        sys.exit(done.exit_code)
