"""The ``mlsandbox`` command line (also the MLproject entry points).

Exit codes: 0 success; 2 invalid input (spec, dataset, pool settings, command-line usage);
1 an unexpected failure (with its traceback under ``--log-level debug``).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from mlsandbox.config import SpecError, load_spec

app = typer.Typer(
    help="MLflow-tracked data-model co-development: probe, analyze and refine data recipes.",
    no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
)

EXIT_INVALID = 2
EXIT_FAILED = 1

Project = Annotated[
    Path, typer.Option("--project", "-p", help="sandbox project: a sandbox.yaml file or the folder holding one")
]
Sets = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", help="override a spec key, e.g. --set pools.size=500 (repeatable)"),
]
Workers = Annotated[
    int | None, typer.Option("--workers", "-w", min=0, help="stats worker processes (0 = one per core; default: the spec's)")
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars")]

F = TypeVar("F", bound=Callable[..., Any])


def _invalid_input_errors() -> tuple[type[Exception], ...]:
    from mlsandbox.data import DataError
    from mlsandbox.pools import PoolError

    return SpecError, DataError, PoolError


def handles_errors(func: F) -> F:
    """Turn known input errors into a one-line message and exit code 2."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except _invalid_input_errors() as err:
            typer.secho(f"error: {err}", fg="red", err=True)
            raise typer.Exit(EXIT_INVALID) from None
        except KeyboardInterrupt:
            typer.secho("interrupted; finished work is kept and reused on the next run", err=True)
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def _spec(project: Path, sets: list[str] | None):  # noqa: ANN202 - ExperimentSpec, imported lazily
    overrides = {}
    for item in sets or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SpecError(f"--set expects key=value, got {item!r}")
        overrides[key.strip()] = value
    return load_spec(project, overrides)


@app.callback()
def main(
    log_level: Annotated[str, typer.Option(help="logging level: debug, info, warning, error")] = "info",
) -> None:
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    for noisy in ("alembic", "urllib3", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@app.command("ops")
def ops_command() -> None:
    """List the available OPs: name, modality, stat keys, description."""
    from mlsandbox.ops import list_ops

    rows = [(c.name, c.modality, ", ".join(c.stat_keys), c.description()) for c in list_ops()]
    widths = [max(len(r[i]) for r in rows + [("name", "modality", "stats", "")]) for i in range(3)]
    header = ("name", "modality", "stats", "description")
    for row in [header, *rows]:
        typer.echo("  ".join(v.ljust(w) for v, w in zip(row[:3], widths)) + "  " + row[3])


@app.command("stats")
@handles_errors
def stats_command(
    project: Project = Path("projects/text-quality"),
    sets: Sets = None,
    workers: Workers = None,
    out: Annotated[Path | None, typer.Option(help="folder for summary.csv and stat_histograms.png")] = None,
    quiet: Quiet = False,
) -> None:
    """Compute (or reuse cached) stats of every OP in the project and print their summary."""
    from mlsandbox.stats import plot_histograms, summarize
    from mlsandbox.workflows.prepare import prepare

    prepared = prepare(_spec(project, sets), workers=workers, progress=not quiet)
    summary = summarize(prepared.stats)
    typer.echo(summary.to_markdown(floatfmt=".4g"))
    reused = len(prepared.stats.ops) - len(prepared.stats.computed)
    typer.echo(f"\n{len(prepared.dataset)} samples; {len(prepared.stats.computed)} OPs computed, {reused} from cache")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        summary.to_csv(out / "summary.csv")
        plot_histograms(prepared.stats, out / "stat_histograms.png")
        typer.echo(f"wrote {out / 'summary.csv'} and {out / 'stat_histograms.png'}")


@app.command("pool")
@handles_errors
def pool_command(
    project: Project = Path("projects/text-quality"),
    sets: Sets = None,
    workers: Workers = None,
    quiet: Quiet = False,
) -> None:
    """Compute stats, build low/mid/high pools per OP plus the random pool, and log each as an MLflow run."""
    from mlsandbox.workflows.pool import run_pools

    result = run_pools(_spec(project, sets), workers=workers, progress=not quiet)
    typer.echo(f"{'pool':42} {'size':>6}  stat range")
    for logged in result.pools:
        p = logged.pool
        rng = f"{p.meta['stat']} in [{p.meta['stat_min']:.4g}, {p.meta['stat_max']:.4g}]" if "stat" in p.meta else ""
        typer.echo(f"{p.name:42} {p.size:>6}  {rng}")
    typer.echo(f"\nlogged {len(result.pools)} pool runs under {result.where}")


if __name__ == "__main__":
    app()
