"""Run (or continue) a study: its parent MLflow run, warm start, the trial loop and the results.

Studies live in an Optuna storage (a journal file next to the MLflow store by default, or any RDB
URL such as PostgreSQL for many workers); re-running a study continues it, and its MLflow run, up
to ``n_trials`` counted trials, and a trial left RUNNING by a killed worker is marked FAILED.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

import mlflow
import yaml

from mlsandbox import artifacts, tracking
from mlsandbox.executors.prepare import prepare
from mlsandbox.models import load_benchmarks
from mlsandbox.search._names import STUDY
from mlsandbox.search._objective import Surplus, TrialContext, TrialFailed, objective
from mlsandbox.search._report import SearchResult, log_results
from mlsandbox.search._space import build_space
from mlsandbox.search._storage import open_storage, open_study
from mlsandbox.search._trials import counted_trials, fail_stale_trials
from mlsandbox.search._warm_start import enqueue_warm_start
from mlsandbox.spec import ExperimentSpec, SearchSpec

log = logging.getLogger(__name__)


def run_search(
    spec: ExperimentSpec,
    study_name: str | None = None,
    storage: str | None = None,
    n_trials: int | None = None,
    search: SearchSpec | None = None,
    worker: int = 0,
    workers: int | None = None,
    progress: bool = True,
) -> SearchResult:
    """Run (or continue) the study until it holds ``n_trials`` counted trials; log the results.

    ``search`` defaults to the spec's ``search:`` section, ``n_trials`` to its ``n_trials``,
    ``study_name`` to ``<project>-search``, ``storage`` to a journal file next to the MLflow
    store. ``worker`` offsets the sampler seed so that concurrent workers draw different trials.
    """
    started = time.perf_counter()
    search = search or spec.search
    n_trials = n_trials or search.n_trials
    study_name = study_name or f"{spec.name}-search"
    prepared = prepare(spec, workers=workers, progress=progress)
    benchmarks = load_benchmarks(spec.benchmarks, spec.base_dir)
    space = build_space(search, prepared.stats, seed=spec.pools.seed)
    optuna_storage, storage_name = open_storage(storage, spec)
    study = open_study(study_name, optuna_storage, search, len(spec.seeds), worker)
    study.set_user_attr("project", spec.name)
    experiment_id = _experiment_id(tracking.use_experiment(spec.name))
    tags = {tracking.KIND: "search", tracking.ENTRY_POINT: "search", tracking.PROJECT: spec.name,
            STUDY: study_name, tracking.DATASET_DIGEST: prepared.dataset.digest}
    ran = 0
    with study_run(study_name, experiment_id, tags) as parent:
        run_id = parent.info.run_id
        tracking.log_batch(run_id, params={
            "study": study_name, "storage": storage_name, "sampler": search.sampler, "pruner": search.pruner,
            "objectives": ",".join(search.objectives), "n_trials": n_trials, "seeds": spec.seeds,
            "model_type": spec.model.type, "min_pool_size": search.min_pool_size, "budget": search.budget,
            "benchmarks": ",".join(benchmarks.names), "dataset_digest": prepared.dataset.digest})
        mlflow.MlflowClient().log_text(run_id, yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False),
                                       artifacts.SPEC)
        fail_stale_trials(study)
        ctx = TrialContext(prepared, benchmarks, space, search, study_name, worker, run_id)
        warm = enqueue_warm_start(study, space, prepared, search, parent.info.experiment_id)
        if warm:
            log.info("warm start: enqueued %s", ", ".join(warm))
        while counted_trials(study) < n_trials:
            try:
                study.optimize(lambda t: objective(t, ctx, n_trials), n_trials=1, catch=(TrialFailed,),
                               gc_after_trial=False, show_progress_bar=False)
            except Surplus as err:
                log.info("%s; stopping this worker", err)
                break
            ran += 1
        result = log_results(study, ctx, run_id, storage_name, ran, time.perf_counter() - started)
        result.where = tracking.run_url(parent)
    return result


@contextmanager
def study_run(study_name: str, experiment_id: str | None, tags: dict[str, str]) -> Iterator[mlflow.ActiveRun]:
    """The study's parent run: the latest one of the same study in the experiment, continued, or a new one.

    It stays the active run while the trials run, so that each trial's run nests under it.
    """
    previous = None
    if experiment_id is not None and not os.environ.get("MLFLOW_RUN_ID"):
        runs = mlflow.MlflowClient().search_runs(
            [experiment_id], f"tags.`{STUDY}` = '{study_name}' and tags.`{tracking.KIND}` = 'search'",
            order_by=["attributes.start_time DESC"], max_results=1)
        previous = runs[0] if runs else None
    if previous is None:
        with tracking.parent_run(f"search/{study_name}", experiment_id, tags) as run:
            yield run
        return
    log.info("continuing the study's MLflow run %s", previous.info.run_id)
    with mlflow.start_run(run_id=previous.info.run_id) as run:
        yield run


def _experiment_id(experiment_id: str | None) -> str | None:
    """The experiment to look for the study's run in: the one set up, or the one ``mlflow run`` names."""
    if experiment_id is not None:
        return experiment_id
    if os.environ.get("MLFLOW_EXPERIMENT_ID"):
        return os.environ["MLFLOW_EXPERIMENT_ID"]
    exp = mlflow.MlflowClient().get_experiment_by_name(os.environ.get("MLFLOW_EXPERIMENT_NAME", ""))
    return exp.experiment_id if exp else None
