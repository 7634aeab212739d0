"""The options the commands share, and how they become the project's spec."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mlsandbox.errors import SpecError

if TYPE_CHECKING:  # the spec package loads only once a command runs
    from mlsandbox.progress import Style
    from mlsandbox.spec import ExperimentSpec

Project = Annotated[
    Path, typer.Option("--project", "-p", help="sandbox project: a sandbox.yaml file or the folder holding one")
]
Sets = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", help="override a spec key, e.g. --set pools.size=500 (repeatable)"),
]


def _count(value: str, what: str, least: int, most: int | None = None) -> int | None:
    """A whole number (``what``: "a number of trials"); empty (an MLproject default) is none given."""
    if value == "":
        return None
    # isdecimal(), not isdigit(): '²' is a digit, and int() refuses it
    if not value.isdecimal() or int(value) < least or (most is not None and int(value) > most):
        bounds = f"{least} or more" if most is None else f"from {least} to {most}"
        raise typer.BadParameter(f"expected {what}, {bounds}, got {value!r}")
    return int(value)


def _workers(value: str) -> int | None:
    from mlsandbox.spec.experiment import MAX_WORKERS  # what stats.workers allows

    return _count(value, "a number of processes", 0, MAX_WORKERS)


def _trials(value: str) -> int | None:
    from mlsandbox.spec.search import MAX_TRIALS  # what search.n_trials allows

    return _count(value, "a number of trials", 1, MAX_TRIALS)


def parse_worker_index(value: str) -> int | None:
    return _count(value, "a worker index", 0)


def parse_trial_workers(value: str) -> int | None:
    return _count(value, "a number of trial workers", 1)


Workers = Annotated[
    int | None, typer.Option("--workers", "-w", parser=_workers, metavar="INTEGER",
                             help="stats worker processes (0 = one per core; default: the spec's)")
]
NTrials = Annotated[
    int | None, typer.Option("--n-trials", "-n", parser=_trials, metavar="INTEGER",
                             help="total trials of the study (default: search.n_trials)")
]
Executor = Annotated[
    str | None, typer.Option("--executor", "-e", help="where cells run: local or ray (default: the spec's executor.type)")
]
StatsEngine = Annotated[
    str | None, typer.Option("--stats-engine", help="where stats run: local or ray (default: the spec's stats.engine)")
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="no chatter or progress bars: progress as a log line every few percent")]

#: The logger of progress lines, shown whatever --log-level and --quiet say (progress.py).
PROGRESS_LOGGER = "mlsandbox.progress"


def progress_style(quiet: bool) -> Style:
    """How a command shows progress: ``--quiet`` (as under ``mlflow run``) keeps it, as log lines,
    and silences the rest of the chatter (info lines, MLflow's and Optuna's own), not warnings or errors."""
    if not quiet:
        return "auto"
    for name in ("", "mlflow", "optuna"):  # Optuna's logger does not propagate: set on its own
        logger = logging.getLogger(name)
        logger.setLevel(max(logger.getEffectiveLevel(), logging.WARNING))
    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"  # its "View run" link per run on a server
    return "lines"


def load_spec(project: Path, sets: list[str] | None, quick: bool = False) -> ExperimentSpec:
    """The project's spec with its ``--quick`` profile (if asked) and then ``--set`` overrides applied."""
    overrides = {}
    for item in sets or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SpecError(f"--set expects key=value, got {item!r}")
        overrides[key.strip()] = value
    from mlsandbox.project import load_project  # imports every OP: only once a command runs

    return load_project(project, overrides, quick=quick)


def with_options(sets: list[str] | None, executor: str | None = None, stats_engine: str | None = None) -> list[str]:
    """``--set`` plus ``--executor`` and ``--stats-engine`` where given (MLproject's empty default: not given)."""
    options = {"executor.type": ("--executor", executor), "stats.engine": ("--stats-engine", stats_engine)}
    for option, value in options.values():
        if value and value not in ("local", "ray"):
            raise typer.BadParameter(f"expected local or ray, got {value!r}", param_hint=f"'{option}'")
    return [*(sets or []), *(f"{key}={value}" for key, (_, value) in options.items() if value)]


Quick = Annotated[bool | None, typer.Option("--quick/--full", help="--quick: a first look in minutes (the project's `quick` profile; no screen, no race)")]
ProfileName = Annotated[str | None, typer.Option(
    "--profile", help="quick or full: --quick/--full by value (as `mlflow run -P profile=...` passes it)")]


def quick_profile(quick: bool | None, profile: str | None) -> bool:
    """Whether the quick profile is asked for, by ``--quick/--full`` or ``--profile`` (an empty one is
    none given, as for every MLproject parameter); the two must agree."""
    if profile:
        if profile not in ("quick", "full") or quick not in (None, profile == "quick"):
            raise typer.BadParameter(f"expected quick or full (and not the opposite of --quick/--full), got {profile!r}",
                                     param_hint="'--profile'")
        return profile == "quick"
    return bool(quick)
