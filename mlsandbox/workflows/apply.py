"""``mlsandbox apply``: a recipe's samples of the project's dataset written to a file, for the run the
recipe is meant for. The samples are the pool the recipe selects, checked as ``train --recipe``
checks it: on the dataset it was measured on, exactly the measured pool; on another one (the full
corpus), only where every statistic it bounds is still computed as it was measured. Each apply is
an MLflow run whose inputs are the source dataset and the written selection."""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import mlflow

from mlsandbox import artifacts, tracking
from mlsandbox.data import ID, IMAGE, TEXT, VIDEO, Dataset
from mlsandbox.errors import InvalidInputError, InvalidRunError
from mlsandbox.executors.prepare import prepare
from mlsandbox.files import scratch_folder
from mlsandbox.pools import Pool, check_exportable, export_format, export_pool
from mlsandbox.progress import StyleArg
from mlsandbox.project import output_file, project_ops
from mlsandbox.recipes import Recipe, load_recipe, parse_recipe, recipe_text
from mlsandbox.search import BEST_RECIPE as SEARCH_BEST_RECIPE
from mlsandbox.spec import DatasetSpec, ExperimentSpec, load_yaml
from mlsandbox.workflows.report import answer_of_run

#: Where an apply run keeps the recipe it applied.
RECIPE_ARTIFACT = "apply/recipe.yaml"
#: What ``apply`` takes, and where the runs it takes keep their recipe, first found first.
RECIPE_SOURCE = ("a recipe file, or the run id of a workflow or refine run, a search run, a refine candidate, "
                 "a search trial or an apply run")
RUN_RECIPES = (artifacts.BEST_RECIPE, SEARCH_BEST_RECIPE, "recipe.yaml", RECIPE_ARTIFACT)
_RUN_ID = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class Applied:
    """A written selection: the recipe, the pool it selected, the file and the run that logged it."""

    recipe: Recipe
    pool: Pool
    path: Path
    dataset_size: int
    passing: int  # distinct samples that pass the recipe's conditions, before its equal-size draw
    run_id: str
    where: str
    caveat: str | None = None  # where the run the recipe came from did not show it better than random data


def apply_recipe(spec: ExperimentSpec, source: str, out: Path, force: bool = False,
                 workers: int | None = None, progress: StyleArg = True) -> Applied:
    """Select the recipe of ``source`` (:func:`recipe_of`) from the project's dataset and write its
    samples to ``out`` (JSONL, gzipped JSONL or Parquet, by suffix): in dataset order, each as often as
    the recipe repeats it, under the dataset's own field names. Recipe and output are checked before
    the stats, and only the stats the recipe bounds are computed."""
    _check_output(out, spec.dataset, force)
    recipe, where, origin = recipe_of(source)
    experiment_id = tracking.use_experiment(spec.name)  # a store that cannot be used stops it before the stats
    bounded = _bounded(spec, recipe)

    def before_the_stats(dataset: Dataset) -> None:  # what is refused then costs no stats pass
        _check_writable(dataset, out)
        recipe.check_statistics(dataset.digest, project_ops(bounded))

    prepared = prepare(bounded, workers=workers, progress=progress, check=before_the_stats)
    pool = recipe.select(prepared.stats)
    passing = pool.unique_size if recipe.sample_size is None else len(
        recipe.model_copy(update={"sample_size": None, "measured": None}).select(prepared.stats).rows)
    _check_output(out, spec.dataset, force)  # again: a file may have appeared while the stats ran
    tags = {tracking.KIND: "apply", tracking.ENTRY_POINT: "apply", tracking.PROJECT: spec.name,
            tracking.DATASET_DIGEST: prepared.dataset.digest, tracking.POOL_DIGEST: pool.digest,
            tracking.RECIPE_DIGEST: recipe.digest()}
    with tracking.parent_run("apply", experiment_id, tags) as run:
        run_id = run.info.run_id
        tracking.log_source_input(prepared.dataset, prepared.stats, run_id=run_id)
        names = field_names(spec.dataset)
        with export_pool(pool, prepared.dataset, out, names, progress):  # in place once its record is logged
            # its own record: MLflow keeps one per (name, digest), which another file of this pool would hold
            identity = json.dumps([pool.digest, prepared.dataset.metadata_digest, str(out.resolve()), names])
            tracking.log_pool_input(pool, prepared.dataset, prepared.stats, out.resolve(), "output", run_id=run_id,
                                    name=out.name, digest=hashlib.sha256(identity.encode()).hexdigest()[:16])
            tracking.log_batch(run_id, params={
                "recipe": recipe.name, "recipe_source": where, "output": str(out.resolve()),
                "dataset": prepared.dataset.source, "dataset_digest": prepared.dataset.digest},
                metrics={"samples": pool.size, "unique_samples": pool.unique_size,
                         "dataset_samples": len(prepared.stats)})
            mlflow.MlflowClient().log_text(run_id, recipe_text(recipe), RECIPE_ARTIFACT)
        return Applied(recipe, pool, out, len(prepared.stats), passing, run_id, tracking.run_url(run),
                       _caveat(origin) if origin is not None else None)


def _bounded(spec: ExperimentSpec, recipe: Recipe) -> ExperimentSpec:
    """The spec with the OPs whose stats the recipe bounds (all of them for an id list, which bounds none):
    on a full corpus, the other OPs' stats could take hours and decide nothing here."""
    named = {c.op for c in recipe.conditions}
    if missing := sorted(named - {op.name for op in spec.ops}):
        raise InvalidInputError(f"recipe {recipe.name!r} bounds the stats of {', '.join(missing)}, which the project "
                                "does not compute: add them to its ops")
    return spec.model_copy(update={"ops": [op for op in spec.ops if op.name in named]}) if named else spec


def recipe_of(source: str) -> tuple[Recipe, str, mlflow.entities.Run | None]:
    """The recipe a file holds, or the one a run logged (given its id: a workflow's or refine's best
    recipe, a search's, a refine candidate's or a search trial's), where it was read, and the run."""
    if not _RUN_ID.fullmatch(source) or Path(source).exists():
        return load_recipe(source), source, None
    run = tracking.find_run(source, RECIPE_SOURCE)
    for artifact in RUN_RECIPES:
        folder = artifact.rpartition("/")[0] or None
        if artifact in {f.path for f in mlflow.MlflowClient().list_artifacts(source, folder)}:
            where = f"runs:/{source}/{artifact}"
            with scratch_folder("recipe") as scratch:
                text = tracking.download_artifacts(source, artifact, scratch).read_bytes()
            return parse_recipe(load_yaml(text), origin=where), where, run
    raise InvalidRunError(f"run {source} is {tracking.describe_run(run)} that logged no recipe; expected {RECIPE_SOURCE}")


def _caveat(run: mlflow.entities.Run) -> str | None:
    """What the answer of a workflow or refine run says against its best recipe: that it did not beat
    the random control, or did not again on fresh seeds; None where it did (or the run has no answer)."""
    answer = answer_of_run(run)
    if answer is None or (answer.won and (answer.confirmed or not answer.confirmed_seeds)):
        return None
    if not answer.name:
        return f"run {run.info.run_id} measured no answer (every cell failed or was skipped)"
    p = (f"Holm-adjusted p {answer.p_adjusted:.3g}" if math.isfinite(answer.p_adjusted)
         else "no p-value: one seed")
    numbers = f"{answer.delta_pct:+.2f}% over random, {p}"
    if not answer.won:
        return (f"run {run.info.run_id}'s answer was not a win ({answer.name}: {numbers}): these are the samples of its "
                "best-scoring recipe, not of one shown to make the model better than random data does")
    again = (f"{answer.confirmed_pct:+.2f}%" if math.isfinite(answer.confirmed_pct) else "its cells failed")
    return (f"run {run.info.run_id}'s best recipe beat the random control ({numbers}) but not again on "
            f"{answer.confirmed_seeds} fresh seeds ({again}): treat the gain as unconfirmed")


def field_names(dataset: DatasetSpec) -> dict[str, str]:
    """The loaded table's columns (``id``, ``text``, ``image``, ``video``) under the names the
    dataset gives them, so that the written file reads like the input."""
    return {ID: dataset.id_field or ID, TEXT: dataset.text_field,
            IMAGE: dataset.image_field or IMAGE, VIDEO: dataset.video_field or VIDEO}


def _check_writable(dataset: Dataset, out: Path) -> None:
    """Once the dataset is loaded, before its stats: columns the file can hold, and not a file of the dataset."""
    check_exportable(dataset.table.schema, out)  # a metadata column of bytes
    if dataset.holds_file(out):
        raise InvalidInputError(f"--out {out} is a file of the dataset: write the selection elsewhere")


def _check_output(out: Path, dataset: DatasetSpec, force: bool) -> None:
    """Before any work: a file this command may write, of a kind that can hold the samples."""
    if export_format(out) != ".parquet" and (dataset.has("images") or dataset.has("videos")):
        raise InvalidInputError(f"--out {out}: the dataset's pictures or clips are bytes, which JSON lines cannot "
                                "hold: write a .parquet file")
    output_file(out)
    if out.exists() and not force:
        raise InvalidInputError(f"--out {out} exists: name another file, or --force to replace it")
