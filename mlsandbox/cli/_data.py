"""The commands at either end of a project: ``init`` starts one on a dataset, ``apply`` writes a
recipe's samples out for the run the recipe is meant for."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer

from mlsandbox.cli._options import Project, Quiet, Sets, StatsEngine, Workers, load_spec, progress_style, with_options


def init_command(
    folder: Annotated[Path, typer.Argument(help="the project's folder (made if missing)")],
    data: Annotated[str | None, typer.Option(
        help="the dataset: file, folder, glob or Hugging Face name (default: the modality's bundled demo set)")] = None,
    modality: Annotated[str | None, typer.Option(
        help="text, image-text or video-text (default: the media the options below name, else text)")] = None,
    data_format: Annotated[str | None, typer.Option("--format", help=(
        "jsonl, json, parquet, csv, hf (a Hugging Face dataset), images or videos (a folder of them, each "
        "captioned by <name>.txt) (default: from the file's suffix)"))] = None,
    text_field: Annotated[str, typer.Option(help="the column with the text (caption)")] = "text",
    image_field: Annotated[str | None, typer.Option(help="the column with each sample's picture")] = None,
    video_field: Annotated[str | None, typer.Option(help="the column with each sample's clip")] = None,
    id_field: Annotated[str | None, typer.Option(help="the column with unique sample ids")] = None,
    on_error: Annotated[str, typer.Option(
        help="malformed rows: raise (stop, naming the row) or skip (skip and count them)")] = "raise",
    benchmarks: Annotated[list[str] | None, typer.Option(
        "--benchmark", help="held-out clean data to score on: FILE or NAME=FILE (repeatable)")] = None,
    benchmark_text_field: Annotated[str | None, typer.Option(
        help="the --benchmark files' text (caption) column (default: the dataset's)")] = None,
    benchmark_media_field: Annotated[str | None, typer.Option(
        help="the --benchmark files' picture or clip column (default: the dataset's)")] = None,
    name: Annotated[str | None, typer.Option(help="the project's (and MLflow experiment's) name (default: the folder's)")] = None,
    force: Annotated[bool, typer.Option("--force", help="replace an existing sandbox.yaml")] = False,
) -> None:
    """Write a new project's sandbox.yaml for a dataset, with the modality's measured defaults, once it loads."""
    from mlsandbox.workflows.new_project import DatasetChoice, write_project

    choice = DatasetChoice(data, data_format, text_field, image_field, video_field, id_field, on_error)
    made = write_project(folder, choice, modality, benchmarks, name, force, benchmark_text_field, benchmark_media_field)
    spec = made.spec
    bench = ", ".join(b.name for b in spec.benchmarks or [])
    article = "an" if made.modality.startswith("i") else "a"
    typer.echo(f"wrote {made.spec_file}: {article} {made.modality} project of {made.samples:,} samples, "
               f"{len(spec.ops)} OPs, the {spec.model.type} proxy; benchmarks {bench}")
    smallest = spec.refine.min_pool_size
    if spec.refine.on_small_pool == "skip" and made.samples < len(spec.pools.splits) * smallest:
        typer.echo(f"note: a probe pool (one of {len(spec.pools.splits)} equal splits) would hold about "
                   f"{made.samples // len(spec.pools.splits):,} samples, fewer than refine.min_pool_size={smallest}: the "
                   f"workflow would stop before training; add data, or lower refine.min_pool_size in {made.spec_file}")
    command = f"mlsandbox workflow -p {shlex.quote(str(folder))}"
    if len(load_spec(made.spec_file, None, quick=True).seeds) > 1:
        typer.echo(f"next: {command} --quick")
    else:  # one seed: no interval, no p-value
        typer.echo(f"next: {command} (its --quick profile trains one seed: a check that the pipeline runs, no answer)")


def apply_command(
    recipe: Annotated[str, typer.Argument(help=(
        "a recipe file (an exported best_recipe.yaml), or the run id of a workflow or refine run (its best "
        "recipe), a search run (its best), a refine candidate, a search trial or an apply run"))],
    out: Annotated[Path, typer.Option(help="the file to write: .jsonl, .jsonl.gz or .parquet")],
    project: Project = Path("projects/text-quality"),
    sets: Sets = None,
    force: Annotated[bool, typer.Option("--force", help="replace an existing file")] = False,
    workers: Workers = None,
    stats_engine: StatsEngine = None,
    quiet: Quiet = False,
) -> None:
    """Write the samples a recipe selects from the project's dataset (the measured pool where it was measured) to a file."""
    from mlsandbox.workflows.apply import apply_recipe

    spec = load_spec(project, with_options(sets, stats_engine=stats_engine))
    applied = apply_recipe(spec, recipe, out.expanduser(), force=force, workers=workers, progress=progress_style(quiet))
    pool, recipe_ = applied.pool, applied.recipe
    measured = recipe_.measured
    rule = "its ids" if recipe_.ids is not None else "its conditions"
    how = (f"{rule} (it records no measurement)" if measured is None
           else "the pool it was measured as" if measured.dataset_digest == pool.dataset_digest
           else f"{rule}, on a dataset it was not measured on")
    typer.echo(f"wrote {applied.path}: {pool.size:,} samples ({pool.unique_size:,} distinct) of the dataset's "
               f"{applied.dataset_size:,}, selected by recipe {recipe_.name!r} as {how} (pool {pool.digest})")
    if applied.passing > pool.unique_size:
        on_measured = measured is not None and measured.dataset_digest == pool.dataset_digest
        typer.echo(f"note: the recipe draws {pool.unique_size:,} of the {applied.passing:,} samples its conditions keep "
                   f"(seed {recipe_.seed}), the sandbox's equal-size draw; to write them all, set sample_size: null"
                   + (" and delete its measured entry (it then is no longer the measured pool)" if on_measured else ""))
    if applied.caveat:
        typer.echo(f"note: {applied.caveat}")
    if pool.unique_size == applied.dataset_size:
        typer.echo("note: the recipe keeps every sample of the dataset (no condition, or bounds beyond every stat)")
    typer.echo(applied.where)
