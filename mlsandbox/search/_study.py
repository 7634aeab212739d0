"""Run (or continue) a study: its parent MLflow run, warm start, the trial loop and the results.

Studies live in an Optuna storage (a journal file next to the MLflow store by default, or any RDB
URL such as PostgreSQL for many workers); re-running a study continues it, and its MLflow run, up
to ``n_trials`` counted trials, and a trial left RUNNING by a killed worker is marked FAILED
(and its runs KILLED) by the next call or by a worker still at work, before each of its trials.
Workers started together take turns to set the study up (stores, study, warm start, parent run),
so that each is made once.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

import mlflow
from optuna.trial import TrialState

from mlsandbox import artifacts, tracking
from mlsandbox.credentials import Scrubber, scrubbed_output, secrets_in
from mlsandbox.errors import SpecError
from mlsandbox.executors.cells import files_digest, one_index_under
from mlsandbox.executors.prepare import prepare
from mlsandbox.models import check_models, load_benchmarks
from mlsandbox.progress import Progress, StyleArg
from mlsandbox.search._locks import init_tracking_store
from mlsandbox.search._names import STUDY
from mlsandbox.search._objective import Surplus, TrialContext, TrialFailed, objective
from mlsandbox.search._report import SearchResult, confirm_before_report, log_results
from mlsandbox.search._run import log_invocation, log_study_params, study_run
from mlsandbox.search._space import build_space, objective_names
from mlsandbox.search._storage import connect_storage, make_sampler, open_study, pruner_name, space_definition
from mlsandbox.search._trials import counted_trials, fail_stale_trials
from mlsandbox.search._warm_start import enqueue_warm_start, requeue_interrupted_warm_starts
from mlsandbox.spec import ExperimentSpec, SearchSpec

if TYPE_CHECKING:
    import optuna

log = logging.getLogger(__name__)


def run_search(
    spec: ExperimentSpec,
    study_name: str | None = None,
    storage: str | None = None,
    n_trials: int | None = None,
    search: SearchSpec | None = None,
    worker: int | None = 0,
    workers: int | None = None,
    progress: StyleArg = True,
) -> SearchResult:
    """Run (or continue) the study until it holds ``n_trials`` counted trials; log the results.

    ``search`` defaults to the spec's ``search:`` section, ``n_trials`` to its ``n_trials``,
    ``study_name`` to ``<project>-search``, ``storage`` to a journal file next to the MLflow
    store. ``worker`` offsets the sampler seed so that concurrent workers draw different trials;
    ``None`` seeds it from this process and the clock instead (workers that do not know their
    index). A password in ``storage`` (or in the tracking URI) is scrubbed from every log line
    and error while the search runs.
    """
    scrub = Scrubber([*secrets_in(storage), *secrets_in(mlflow.get_tracking_uri())])
    with scrubbed_output(scrub):
        try:
            result = _run_search(spec, study_name, storage, n_trials, search, worker, workers, progress)
        except Exception as err:
            if scrub.leaks(err):
                raise scrub.clean_error(err) from None
            raise
    result.where = scrub(result.where)  # it names the tracking store
    return result


def _run_search(
    spec: ExperimentSpec, study_name: str | None, storage: str | None, n_trials: int | None,
    search: SearchSpec | None, worker: int | None, workers: int | None, progress: StyleArg,
) -> SearchResult:
    started = time.perf_counter()
    search = search or spec.search
    n_trials = total_trials(n_trials, search)
    study_name = study_name or f"{spec.name}-search"
    init_tracking_store()  # first: the default storage goes next to it
    opened = connect_storage(storage, spec)  # before the stats: a bad storage fails at once
    make_sampler(search, 0)  # and a sampler that cannot be made (a missing package), before a study exists
    benchmarks = load_benchmarks(spec.benchmarks, spec.base_dir)  # small: a bad one stops it before the stats
    check_models([spec.model], spec.executor.type)  # and a model that cannot be loaded here (trials: one model)
    prepared = prepare(spec, workers=workers, progress=progress)
    if search.min_pool_size > len(prepared.dataset):
        raise SpecError(f"search.min_pool_size={search.min_pool_size} is more than the dataset's "
                        f"{len(prepared.dataset)} samples: every trial's pool would be pruned")
    space = build_space(search, prepared.stats, seed=spec.pools.seed)
    experiment_id = _experiment_id(tracking.use_experiment(spec.name))
    tags = {tracking.KIND: "search", tracking.ENTRY_POINT: "search", tracking.PROJECT: spec.name,
            STUDY: study_name, tracking.DATASET_DIGEST: prepared.dataset.digest}
    settings: dict[str, Any] = {
        "study": study_name, "storage": opened.name, "n_trials": n_trials, "worker": worker,
        "sampler": search.sampler, "pruner": pruner_name(search, len(spec.trial_seeds())), "seeds": spec.trial_seeds(),
        "min_pool_size": search.min_pool_size, "budget": search.budget, "model_type": spec.model.type,
        "host": socket.gethostname(), "pid": os.getpid(), "project_run": os.environ.get("MLFLOW_RUN_ID"),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    files = files_digest(spec.model, spec.evaluator)  # only where a script or model folder is named
    definition = {
        "dataset_digest": prepared.dataset.digest, "model_type": spec.model.type,
        "model_digest": spec.model.digest()[:16], "evaluator_digest": spec.evaluator.digest()[:16],
        "benchmarks": ",".join(benchmarks.names), "benchmarks_digest": benchmarks.digest,
        "seeds": ",".join(map(str, spec.trial_seeds())), "budget": str(search.budget),
        **({"files_digest": files[:16]} if files else {})}
    ran, objectives = 0, tuple(objective_names(search))  # what a lost trial's run logged, read back
    with ExitStack() as stack:
        with opened.lock(study_name):  # workers started together: one creates, the others find
            study, settings["sampler_seed"] = open_study(study_name, opened.optuna, search, len(spec.trial_seeds()),
                                                         definition, worker, space_definition(space))
            study.set_user_attr("project", spec.name)
            parent = stack.enter_context(study_run(study, study_name, experiment_id, tags))
            run_id = parent.info.run_id
            log_study_params(run_id, {"study_name": study_name, "objectives": ",".join(search.objectives),
                                      **definition})
            tracking.log_source_input(prepared.dataset, prepared.stats, run_id=run_id)  # once: MLflow keeps one
            with opened.trial_lock(study_name):  # before looking for interrupted warm starts
                fail_stale_trials(study, opened.exclusive, objectives)
            warm = (enqueue_warm_start(study, space, prepared, search, parent.info.experiment_id)
                    or requeue_interrupted_warm_starts(study))
        if warm:
            log.info("warm start: enqueued %s", ", ".join(warm))
        log.info("study %r, storage %s, sampler seed %d", study_name, opened.name, settings["sampler_seed"])
        record = log_invocation(run_id, settings)
        mlflow.MlflowClient().log_text(run_id, spec.shown_yaml(),
                                       artifacts.SPEC)
        bar = stack.enter_context(Progress(n_trials, f"study {study_name}", "trial", progress,
                                           initial=min(counted_trials(study), n_trials)))
        ctx = TrialContext(prepared, benchmarks, space, search, study_name, worker, run_id, progress=bar)
        stack.enter_context(one_index_under(run_id))  # the trials' cells: one search of the store for them all
        finished: list[optuna.trial.FrozenTrial] = []  # this worker's: the study's last may be a queued one
        while True:
            with ExitStack() as turn:  # the trial lock: held until this worker's new trial names its owner
                turn.enter_context(opened.trial_lock(study_name))
                fail_stale_trials(study, opened.exclusive, objectives)  # a worker killed meanwhile
                if counted_trials(study) >= n_trials:
                    break
                ctx.owned = turn.close
                try:
                    study.optimize(lambda t: objective(t, ctx, n_trials), n_trials=1, catch=(TrialFailed,),
                                   callbacks=[lambda _, trial: finished.append(trial)],
                                   gc_after_trial=False, show_progress_bar=False)
                except Surplus as err:
                    log.info("%s; stopping this worker", err)
                    break
                except UnboundLocalError as err:  # Optuna's clean-up after an interruption inside its tell
                    if isinstance(err.__context__, KeyboardInterrupt):  # hides it: exit 130/143, runs KILLED
                        raise err.__context__ from None
                    raise
                finally:
                    ctx.owned = None
            ran += 1
            bar.advance(max(0, min(counted_trials(study), n_trials) - bar.done),
                        f"trial {finished[-1].number} {finished[-1].state.name.lower()}" if finished else "")
        confirm_before_report(study, ctx, run_id)  # not under the lock, which every other worker of the study waits for
        with opened.lock(study_name):  # one report at a time, each from the storage as it is then: the last is right
            result = log_results(study, ctx, run_id, opened.name, ran, time.perf_counter() - started)
        result.failed_now = [t.number for t in finished if t.state == TrialState.FAIL]
        log_invocation(run_id, {**settings, "trials_run": ran, "wall_s": round(result.wall_s, 3)}, record)
        result.where = tracking.run_url(parent)
    return result


def total_trials(n_trials: int | None, search: SearchSpec) -> int:
    """The study's total: ``n_trials``, else ``search.n_trials``; 0 or fewer is refused, not taken for the default."""
    if n_trials is None:
        return search.n_trials
    if n_trials < 1:
        raise SpecError(f"n_trials must be 1 or more, got {n_trials}")
    return n_trials


def _experiment_id(experiment_id: str | None) -> str | None:
    """The experiment to look for the study's run in: the one set up, or the one ``mlflow run`` names."""
    if experiment_id is not None:
        return experiment_id
    if os.environ.get("MLFLOW_EXPERIMENT_ID"):
        return os.environ["MLFLOW_EXPERIMENT_ID"]
    exp = mlflow.MlflowClient().get_experiment_by_name(os.environ.get("MLFLOW_EXPERIMENT_NAME", ""))
    return exp.experiment_id if exp else None
