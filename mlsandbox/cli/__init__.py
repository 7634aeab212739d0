"""The ``mlsandbox`` command line (also the MLproject entry points).

Exit codes: 0 success; 2 invalid input (spec, dataset, pool settings, run ids, command-line usage);
1 an unexpected failure (with its Python traceback); 130 interrupted
(SIGINT, Ctrl-C); 143 terminated (SIGTERM). Interrupted or terminated, a command ends its
MLflow runs KILLED with the reason in ``mlsandbox.end_reason``.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from mlsandbox.cli._data import apply_command, init_command
from mlsandbox.cli._errors import OneLineUsageErrors, exit_at_a_signal, exit_failed, handles_errors
from mlsandbox.cli._options import (
    PROGRESS_LOGGER,
    Executor,
    NTrials,
    ProfileName,
    Project,
    Quick,
    Quiet,
    Sets,
    StatsEngine,
    Workers,
    load_spec,
    parse_trial_workers,
    parse_worker_index,
    progress_style,
    quick_profile,
    with_options,
)
from mlsandbox.cli._printed import cell_counts, every_cell_failed, interval_words, print_workflow

app = typer.Typer(
    help="MLflow-tracked data-model co-development: probe, analyze and refine data recipes.",
    no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False, cls=OneLineUsageErrors,
)

T = TypeVar("T")
LOG_LEVELS = ("debug", "info", "warning", "error")

def _print_version(value: bool) -> None:
    if value:
        from mlsandbox import __version__

        typer.echo(f"mlsandbox {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    log_level: Annotated[str, typer.Option(help=f"logging level: {', '.join(LOG_LEVELS)}")] = "info",
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="print the version and exit")] = False,
) -> None:
    if log_level.lower() not in LOG_LEVELS:
        raise typer.BadParameter(f"{log_level!r} is not one of {', '.join(LOG_LEVELS)}", param_hint="'--log-level'")
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("alembic", "urllib3", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger(PROGRESS_LOGGER).setLevel(logging.INFO)  # progress is always shown


@app.command("ops")
def ops_command() -> None:
    """List the available OPs: name, modality, stat keys, description."""
    from mlsandbox.ops import list_ops

    rows = [(c.name, c.modality, ", ".join(c.stat_keys), c.description()) for c in list_ops()]
    widths = [max(len(r[i]) for r in rows + [("name", "modality", "stats", "")]) for i in range(3)]
    header = ("name", "modality", "stats", "description")
    for row in [header, *rows]:
        typer.echo("  ".join(v.ljust(w) for v, w in zip(row[:3], widths)) + "  " + row[3])


app.command("init")(handles_errors(init_command))


@app.command("stats")
@handles_errors
def stats_command(
    project: Project = Path("projects/text-quality"),
    sets: Sets = None,
    workers: Workers = None,
    out: Annotated[Path | None, typer.Option(help="folder for summary.csv and stat_histograms.png")] = None,
    stats_engine: StatsEngine = None,
    quiet: Quiet = False,
) -> None:
    """Compute (or reuse cached) stats of every OP in the project and print their summary."""
    from mlsandbox import artifacts, figures
    from mlsandbox.project import output_folder
    from mlsandbox.stats import summarize, summary_markdown
    from mlsandbox.workflows.pool import tracked_stats

    spec = load_spec(project, with_options(sets, stats_engine=stats_engine))
    written = [artifacts.filename(k) for k in (artifacts.STATS_SUMMARY_TABLE, artifacts.STATS_HISTOGRAMS)]
    out = out and output_folder(out, written)  # checked before any work
    prepared = tracked_stats(spec, workers=workers, progress=progress_style(quiet))
    summary = summarize(prepared.stats)
    typer.echo(summary_markdown(summary))
    reused = len(prepared.stats.ops) - len(prepared.stats.computed)
    typer.echo(f"\n{len(prepared.dataset)} samples; {len(prepared.stats.computed)} of {len(prepared.stats.ops)} OPs "
               f"computed, {reused} from cache")
    if out is not None:
        table = out / artifacts.filename(artifacts.STATS_SUMMARY_TABLE)
        histograms = out / artifacts.filename(artifacts.STATS_HISTOGRAMS)
        summary.to_csv(table)
        stats = prepared.stats
        figures.stat_histograms(stats.frame[stats.numeric_keys()], histograms)
        typer.echo(f"wrote {table} and {histograms}")


@app.command("pool")
@handles_errors
def pool_command(
    project: Project = Path("projects/text-quality"),
    sets: Sets = None,
    workers: Workers = None,
    stats_engine: StatsEngine = None,
    quiet: Quiet = False,
) -> None:
    """Compute the stats, then build every OP's low/mid/high pools and a random pool of each size; log each as a run."""
    from mlsandbox.pools import SplitOrigin
    from mlsandbox.workflows.pool import run_pools

    spec = load_spec(project, with_options(sets, stats_engine=stats_engine))
    result = run_pools(spec, workers=workers, progress=progress_style(quiet))
    typer.echo(f"{'pool':42} {'size':>6}  {'run id (for train --pool-run)':32}  stat range")
    for logged in result.pools:
        p, o = logged.pool, logged.pool.origin
        rng = f"{o.stat} in [{o.stat_min:.6g}, {o.stat_max:.6g}]" if isinstance(o, SplitOrigin) else ""
        typer.echo(f"{p.name:42} {p.size:>6}  {logged.run_id:32}  {rng}")
    typer.echo(f"\nlogged {len(result.pools)} pool runs under {result.where}")


@app.command("train")
@handles_errors
def train_command(
    project: Project = Path("projects/text-quality"),
    pool: Annotated[list[str] | None, typer.Option("--pool", help="a single-OP pool by name, e.g. text_length_filter/high (repeatable)")] = None,
    pool_file: Annotated[list[Path] | None, typer.Option(help="a pool file (JSONL with the samples' ids) (repeatable)")] = None,
    pool_run: Annotated[list[str] | None, typer.Option(help="the MLflow run id of a logged pool (repeatable)")] = None,
    recipe: Annotated[list[Path] | None, typer.Option(help="a recipe file, e.g. an exported best_recipe.yaml: the pool it selects (repeatable)")] = None,
    seeds: Annotated[str | None, typer.Option(help="seeds for this run instead of the spec's, comma-separated, every pool on each (no race); fresh ones re-measure a winner, e.g. 100,101,102,103,104")] = None,
    sets: Sets = None,
    workers: Workers = None,
    stats_engine: StatsEngine = None,
    quiet: Quiet = False,
) -> None:
    """Train the proxy model on pools and on the equal-size random pool for every seed; log the deltas."""
    from mlsandbox.executors.compare import table_markdown, without_constant
    from mlsandbox.executors.comparison import family_size
    from mlsandbox.workflows.train import run_training

    # the spec's race and confirmation belong to its own seeds (a workflow's); these seeds stand alone
    fixed = [f"seeds=[{','.join(_seed_list(seeds))}]", "race=null", "confirm=null"] if seeds else []
    spec = load_spec(project, with_options([*(sets or []), *fixed], stats_engine=stats_engine))
    result = run_training(spec, _given(pool), _given(pool_file), _given(pool_run), workers=workers,
                          progress=progress_style(quiet), recipes=_given(recipe))
    cells, pools = result.comparisons.cells, len(result.comparisons.items)
    table = result.comparisons.table().drop(columns=["op", "split"]).sort_values("rank", kind="stable")
    typer.echo(table_markdown(without_constant(table, "fidelity")))
    failed = [c for c in cells if not c.ok]
    tested = family_size(result.comparisons.items)  # a pool two recipes select alike is one test
    family = ("no correction: one pool" if pools == 1 else "no pool has a p-value" if not tested
              else f"Holm-adjusted across the {tested} distinct pool{'' if tested == 1 else 's'} with a p-value "
                   f"among this command's {pools} pools")
    typer.echo(f"\n{len(cells)} cells: {sum(not c.reused for c in cells)} run, {sum(c.reused for c in cells)} reused, {len(failed)} failed; "
               "delta = relative change of the benchmark scores over the random pool, "
               f"{interval_words(result.comparisons.items)}; p_adjusted: {family}; {result.where}")
    trained = {c.run_id for c in cells if not c.reused}  # pools of one size share their controls
    controls = {b.run_id for item in result.comparisons.items for b in item.baselines.values() if b.reused}
    if reused := len(controls - trained):
        typer.echo(f"{reused} of the random controls were measured before and reused: if you chose these pools by "
                   "results on these seeds, p_adjusted does not count that choice; fresh seeds (--seeds) give "
                   "controls that took no part in it")
    more = f" (and {len(failed) - 1} more cells: each reason is in cells.json of the run)" if len(failed) > 1 else ""
    exit_failed(f"FAILED {failed[0].pool.name} seed {failed[0].seed}: {failed[0].reason}{more}" if failed else None)


def _given(values: list[T] | None) -> list[T]:
    """The values of a repeatable option, without empty ones (``-P pool=`` under ``mlflow run``)."""
    return [v for v in values or [] if str(v) not in ("", ".")]


def _seed_list(text: str) -> list[str]:
    seeds = [part.strip() for part in text.split(",")]
    if not all(seed.isdigit() for seed in seeds):
        raise typer.BadParameter(f"expected comma-separated seeds (integers >= 0), got {text!r}", param_hint="--seeds")
    return seeds


app.command("apply")(handles_errors(apply_command))


@app.command("evaluate")
@handles_errors
def evaluate_command(
    run_id: Annotated[str, typer.Argument(help="MLflow run id of a trained cell (it logged a model)")],
    project: Project = Path("projects/text-quality"),
    sets: Sets = None,
) -> None:
    """Score the model a training run logged on the project's benchmarks, as a new run."""
    from mlsandbox.workflows.train import run_evaluation

    evaluation = run_evaluation(load_spec(project, sets), run_id)
    for bench, values in evaluation.metrics.items():
        typer.echo(f"{bench:12} " + "  ".join(f"{k}={v:.4f}" for k, v in sorted(values.items())))
    typer.echo(f"\nlogged to run {evaluation.run_id}")


def _run_steps(entry: str, until: str, project: Path, sets: list[str] | None, quick: bool,
               workers: int | None, quiet: bool) -> None:
    from mlsandbox.workflows.workflow import run_workflow

    spec = load_spec(project, sets, quick)
    result = run_workflow(spec, until=until, entry_point=entry, workers=workers, progress=progress_style(quiet))
    print_workflow(result)
    exit_failed(every_cell_failed(result.steps_cells()))


def _step_command(name: str, until: str, doc: str) -> None:
    """Register ``mlsandbox <name>``: the workflow's steps up to ``until`` (finished cells reused)."""

    def command(project: Project = Path("projects/text-quality"), sets: Sets = None, quick: Quick = None,
                profile: ProfileName = None, workers: Workers = None, executor: Executor = None,
                stats_engine: StatsEngine = None, quiet: Quiet = False) -> None:
        _run_steps(name, until, project, with_options(sets, executor, stats_engine), quick_profile(quick, profile),
                   workers, quiet)

    command.__doc__ = doc
    app.command(name)(handles_errors(command))


_step_command("probe", "probe",
              "Probe: train every OP's low/mid/high pools against the random pool; rank them (paper Table 1).")
_step_command("analyze", "analyze",
              "Probe (reusing finished cells), then correlate and cluster OP stats and benchmark metrics.")
_step_command("refine", "refine", "Probe and analyze (reusing finished cells), then build and train multi-OP recipes, "
              "the pyramid and the duplication study.")
_step_command("workflow", "refine",
              "The whole Probe-Analyze-Refine workflow plus its report, resumable (finished cells are reused).")


@app.command("transfer")
@handles_errors
def transfer_command(
    project: Project = Path("projects/text-quality"),
    sets: Sets = None,
    workers: Workers = None,
    executor: Executor = None,
    stats_engine: StatsEngine = None,
    quiet: Quiet = False,
) -> None:
    """Rank transfer: how well each cheaper model of `transfer.models` ranks the probe's pools as costlier ones do."""
    from mlsandbox.executors.compare import table_markdown
    from mlsandbox.workflows.transfer import run_transfer, shown_pairs

    spec = load_spec(project, with_options(sets, executor, stats_engine))
    result = run_transfer(spec, workers=workers, progress=progress_style(quiet))
    typer.echo("delta %: relative change over an equal-size random pool, mean over seeds with its 95% interval; "
               "p (Holm): adjusted across that model's pools")
    typer.echo(table_markdown(result.claims_table().reset_index()))
    typer.echo("\n" + table_markdown(shown_pairs(result.pairs)))
    typer.echo("\ndecision accuracy: the share of pairs of pools that the cheaper model orders as the costlier one "
               "does (1 = the same ranking, 0.5 = chance without ties; a pair tied under one model only is a wrong one); _low/_high: 95% interval over pools (bootstrap); "
               "_p_value: permutation p-value against no association (≤: no shuffle came as close), "
               "_p_adjusted: Holm-adjusted across the pairs that have a p-value")
    typer.echo(cell_counts(result.cells, result.wall_s, result.where))
    exit_failed(every_cell_failed({"transfer": result.cells}))


@app.command("report")
@handles_errors
def report_command(
    run_id: Annotated[str, typer.Argument(help="MLflow run id of a workflow, probe, analyze or refine run")],
    out: Annotated[Path, typer.Option(help="folder for report.html and report.md")] = Path("report"),
    log: Annotated[bool, typer.Option(help="also log the report to the run (not while it still runs elsewhere)")] = True,
) -> None:
    """Write a self-contained HTML (and Markdown) report of a workflow, probe, analyze or refine run."""
    from mlsandbox.workflows.report import build_report, log_report

    page, md = build_report(run_id, out)
    typer.echo(f"wrote {page} and {md}")
    if log and not log_report(run_id):
        typer.echo(f"not logged to run {run_id}: it is still RUNNING, and logs its own report when it ends")


@app.command("search")
@handles_errors
def search_command(
    project: Project = Path("projects/text-quality"),
    study: Annotated[str | None, typer.Option(help="Optuna study name (default: <project name>-search); re-use it to continue")] = None,
    storage: Annotated[str | None, typer.Option(
        envvar="MLSANDBOX_STORAGE",
        help="Optuna storage: an RDB URL (postgresql+psycopg2://user@host/db; the password from PGPASSWORD or "
             "~/.pgpass) or a journal file (default, also for an empty value: next to the MLflow store)")] = None,
    n_trials: NTrials = None,
    worker: Annotated[int | None, typer.Option(parser=parse_worker_index, metavar="INTEGER", help="index of this worker when several run one study: reproducible "
                                                "draws (default: a sampler seed of its own, from the process and clock)")] = None,
    sets: Sets = None,
    quick: Quick = None,
    profile: ProfileName = None,
    workers: Workers = None,
    executor: Annotated[str | None, typer.Option(
        "--executor", "-e", help="ray: trial workers as Ray tasks on the cluster (default: the spec's executor.type)")] = None,
    trial_workers: Annotated[int | None, typer.Option(parser=parse_trial_workers, metavar="INTEGER", help="with --executor ray: how many trial workers "
                                                       "(default: one per executor.cpus_per_cell CPUs of the cluster)")] = None,
    stats_engine: StatsEngine = None,
    quiet: Quiet = False,
) -> None:
    """Search recipe thresholds and the duplication rate with Optuna; each trial is an MLflow run."""
    from mlsandbox.executors.compare import table_markdown
    from mlsandbox.search import run_search, run_search_on_ray

    # An empty --storage (the MLproject's default) is none given: the environment's, else the default.
    storage = storage or os.environ.get("MLSANDBOX_STORAGE") or None
    spec = load_spec(project, with_options(sets, executor, stats_engine), quick_profile(quick, profile))
    if trial_workers is not None and spec.executor.type != "ray":
        raise typer.BadParameter("needs --executor ray (trial workers are Ray tasks); on one machine, start "
                                 "several `mlsandbox search` processes on one study instead", param_hint="'--trial-workers'")
    if spec.executor.type == "ray":
        result = run_search_on_ray(spec, study or None, storage, n_trials, trial_workers, progress=progress_style(quiet))
    else:
        result = run_search(spec, study or None, storage, n_trials, worker=worker, workers=workers,
                            progress=progress_style(quiet))
    warm = "warm_start" in result.trials and result.trials["warm_start"].astype(bool).any()
    columns = [c for c in ("trial", "state", "delta_pct", "ci_low_pct", "ci_high_pct", "p_adjusted", "pool_size", "reason",
                           *(["warm_start"] if warm else [])) if c in result.trials]
    typer.echo(table_markdown(result.trials_shown()[columns]))  # no delta for a pruned trial: its reason has it
    if result.best is not None:
        typer.echo(f"\nbest: trial {result.best.number}, delta {result.best_text()}. {result.verdict_text()}"
                   + ("" if result.confirmed or not result.won else " As the best of the study's trials, its delta "
                      "is biased upwards: re-measure it on fresh seeds."))
    for line in result.pareto_text():
        typer.echo(f"pareto: {line}")
    waiting = int((result.trials["state"] == "WAITING").sum()) if "state" in result.trials else 0
    typer.echo(f"\n{result.ran} trial{'' if result.ran == 1 else 's'} run now, {len(result.trials)} in study {result.study_name!r}"
               f"{f' ({waiting} queued, not run yet)' if waiting else ''} ({result.storage}); {result.wall_s:.0f} s; {result.where}")
    typer.echo(f"live view: optuna-dashboard {result.storage}")
    exit_failed(result.all_failed_text())  # as train's failed cells


def program() -> None:
    """The ``mlsandbox`` program (and ``python -m mlsandbox.cli``): the app, then a shutdown that a
    late signal ends with the command's own exit code (not 143 after finished work)."""
    try:
        app()
    except SystemExit as done:
        exit_at_a_signal(done.code)
        raise


if __name__ == "__main__":
    program()
