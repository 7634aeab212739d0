"""Recipe search: an Optuna study whose trials are recipes, trained and scored as MLflow runs.

Each trial draws a recipe from the search space, selects its pool from the cached stats table,
and compares it with the equal-size random pool (:func:`compare_pools`) under a child run of the
study's parent run; the trial's cells are nested under it. The objective is the ``delta_pct``
metric read back from that run, so the study optimises exactly what MLflow shows. A pool too
small to train on is a PRUNED trial with its reason; a crashing trainer is a FAILED trial and
the study goes on. Studies live in an Optuna storage (a journal file next to the MLflow store by
default, or any RDB URL such as PostgreSQL for many workers); re-running a study continues it up
to ``n_trials`` counted trials, and a trial left RUNNING by a killed worker is marked FAILED.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import socket
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import optuna
import pandas as pd
import yaml
from mlflow.entities import RunStatus
from mlflow.exceptions import MlflowException
from optuna.trial import FrozenTrial, TrialState

from mlsandbox import figures, tracking
from mlsandbox.delta import summarize_deltas
from mlsandbox.errors import PoolError, SpecError
from mlsandbox.executors.cells import CellResult
from mlsandbox.executors.compare import compare_pools
from mlsandbox.executors.prepare import Prepared, prepare
from mlsandbox.models import BenchmarkSet, load_benchmarks
from mlsandbox.pools import Pool, materialize
from mlsandbox.recipes import Recipe, export_recipe, ksigma_recipe, load_recipe, parse_recipe
from mlsandbox.search.space import (
    SearchSpace,
    SearchSpec,
    build_space,
    describe_space,
    objective_names,
    params_from_recipe,
    suggest_recipe,
)
from mlsandbox.spec import ExperimentSpec

log = logging.getLogger(__name__)

STUDY = tracking.TAG + "study"
TRIAL = tracking.TAG + "trial"
TRIAL_STATE = tracking.TAG + "trial_state"
JOURNAL_FILE = "optuna.journal"
ARTIFACTS = "search"

# Trial user attributes: why a trial ended as it did, and who ran it.
RECIPE_ATTR = "recipe"
RUN_ATTR = "mlflow_run_id"
PRUNE_REASON = "prune_reason"
FAIL_REASON = "fail_reason"
INTERRUPTED = "interrupted"
WARM_START = "warm_start"
HOST, PID, WORKER = "host", "pid", "worker"

# A trial left RUNNING by a worker on another machine is failed once its heartbeat is this old.
HEARTBEAT_S = 30
GRACE_S = 120


class TrialFailed(RuntimeError):
    """Every cell of the trial failed (the trainer crashed): the trial FAILs, the study goes on."""


class _Surplus(RuntimeError):
    """Other workers already started the requested number of trials."""


@dataclass
class SearchResult:
    study_name: str
    storage: str  # password hidden
    run_id: str
    trials: pd.DataFrame
    best: FrozenTrial | None
    best_recipe: Recipe | None
    pareto: list[FrozenTrial]
    importances: dict[str, float]
    ran: int  # trials this call ran
    wall_s: float
    where: str
    report: str = ""  # the Markdown section

    @property
    def best_delta_pct(self) -> float | None:
        return None if self.best is None else self.best.values[0]


@dataclass
class _Context:
    prepared: Prepared
    benchmarks: BenchmarkSet
    space: SearchSpace
    search: SearchSpec
    study_name: str
    worker: int
    run_times: list[dict[str, float]] = field(default_factory=list)  # per trial this call ran


# --- storage, sampler, pruner, study ---------------------------------------------------------


def default_storage_path(spec: ExperimentSpec) -> Path:
    """The journal file next to the MLflow store (its folder for SQLite or file stores)."""
    uri = mlflow.get_tracking_uri()
    if uri.startswith("sqlite:///"):
        return Path(uri.removeprefix("sqlite:///")).expanduser().resolve().parent / JOURNAL_FILE
    if uri.startswith("file:"):
        return Path(uri.removeprefix("file://").removeprefix("file:")).resolve() / JOURNAL_FILE
    if "://" not in uri:
        return Path(uri).resolve() / JOURNAL_FILE
    return spec.workspace_dir / JOURNAL_FILE  # a tracking server: keep the study with the workspace


def open_storage(storage: str | None, spec: ExperimentSpec) -> tuple[optuna.storages.BaseStorage, str]:
    """An Optuna storage and its printable name: a journal file (path or default) or an RDB URL.

    RDB storages record heartbeats, so trials of a worker that died on any machine are failed
    by the next worker; a journal file is for the processes of one machine.
    """
    if storage and "://" in storage:
        from sqlalchemy.exc import SQLAlchemyError

        try:
            rdb = optuna.storages.RDBStorage(storage, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S)
        except SQLAlchemyError:
            # Workers started together race to create the schema; the loser finds it made.
            time.sleep(1.0)
            rdb = optuna.storages.RDBStorage(storage, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S)
        return rdb, _redact(storage)
    path = Path(storage).expanduser().resolve() if storage else default_storage_path(spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    backend = optuna.storages.journal.JournalFileBackend(str(path))
    return optuna.storages.JournalStorage(backend), str(path)


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:  # not a URL SQLAlchemy parses: show the scheme only
        return url.split("://", 1)[0] + "://***"


def make_sampler(search: SearchSpec, seed: int) -> optuna.samplers.BaseSampler:
    """The configured sampler, seeded."""
    if search.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True)
    if search.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if search.sampler == "gp":
        return optuna.samplers.GPSampler(seed=seed, warn_independent_sampling=False)
    if search.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    import importlib.util

    if importlib.util.find_spec("cmaes") is None:
        raise SpecError("search.sampler 'cmaes' needs the cmaes package: pip install cmaes")
    return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)


def make_pruner(search: SearchSpec, seeds: int) -> optuna.pruners.BasePruner:
    """Pruning on the running delta after each seed (the steps a trial reports)."""
    if search.pruner == "none" or seeds < 2 or search.multi_objective:
        return optuna.pruners.NopPruner()
    if search.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0)
    if search.pruner == "percentile":
        return optuna.pruners.PercentilePruner(25.0, n_startup_trials=5, n_warmup_steps=0)
    return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=seeds)


def open_study(
    study_name: str, storage: optuna.storages.BaseStorage, search: SearchSpec, seeds: int, worker: int = 0
) -> optuna.Study:
    """Create the study, or load it when it exists (its objectives must be the same)."""
    directions = ["maximize"] * len(search.objectives)
    study = optuna.create_study(study_name=study_name, storage=storage, directions=directions,
                                load_if_exists=True, pruner=make_pruner(search, seeds))
    stored = [d.name.lower() for d in study.directions]
    if stored != directions:
        raise SpecError(f"study {study_name!r} has {len(stored)} objective(s) but search.objectives is "
                        f"{search.objectives}; use another --study name")
    # Different workers, and a resumed run, must not replay the same sampler draws.
    study.sampler = make_sampler(search, search.seed + 1_000_003 * worker + len(study.trials))
    return study


# --- trial accounting ------------------------------------------------------------------------


def counts_towards_total(trial: FrozenTrial) -> bool:
    """A trial counts towards ``n_trials`` if it ran to an outcome (or is running now).

    Interrupted trials (Ctrl-C, a killed worker) and surplus trials are not counted, so that a
    resumed study still runs the requested number of real trials.
    """
    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING):
        return True
    return trial.state == TrialState.FAIL and FAIL_REASON in trial.user_attrs


def counted_trials(study: optuna.Study) -> int:
    return sum(counts_towards_total(t) for t in study.get_trials(deepcopy=False))


def fail_stale_trials(study: optuna.Study) -> list[int]:
    """Fail RUNNING trials whose worker process on this machine is gone; heartbeats do the rest."""
    with warnings.catch_warnings():  # experimental since optuna 2.9, stable in use
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)  # RDB storages with heartbeats: any machine
    host = socket.gethostname()
    stale = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        pid = t.user_attrs.get(PID)
        if t.user_attrs.get(HOST) == host and isinstance(pid, int) and not _alive(pid):
            study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)
            stale.append(t.number)
    if stale:
        log.warning("marked trials %s FAILED: their worker process is gone (not counted)", stale)
    return stale


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # this process runs no trial yet: a RUNNING trial with our pid is a leftover
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --- warm start ------------------------------------------------------------------------------


def latest_workflow_recipe(experiment_id: str | None) -> Recipe | None:
    """The best recipe of the latest finished ``workflow`` run of the experiment, if any."""
    if experiment_id is None:
        return None
    runs = mlflow.MlflowClient().search_runs(
        [experiment_id], f"tags.`{tracking.ENTRY_POINT}` = 'workflow' and attributes.status = 'FINISHED'",
        order_by=["attributes.end_time DESC"], max_results=5)
    for run in runs:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                path = tracking.download_artifacts(run.info.run_id, "refine/best_recipe.yaml", Path(tmp))
            except (MlflowException, OSError) as err:  # no best recipe in that run: try the previous one
                log.debug("run %s has no refine/best_recipe.yaml: %s", run.info.run_id, err)
                continue
            return load_recipe(path)
    return None


def enqueue_warm_start(study: optuna.Study, ctx: _Context, experiment_id: str | None) -> list[str]:
    """Enqueue the workflow's best recipe and the k-sigma recipe as the first trials of a new study."""
    if study.get_trials(deepcopy=False):
        return []
    stats, spec = ctx.prepared.stats, ctx.prepared.spec
    recipes: list[tuple[str, Recipe]] = []
    if ctx.search.warm_start.workflow:
        best = latest_workflow_recipe(experiment_id)
        if best is not None:
            recipes.append(("workflow", best))
    if ctx.search.warm_start.ksigma:
        keys = [s.stat for s in ctx.space.stats]
        recipes.append(("ksigma", ksigma_recipe(stats, spec.refine.ksigma, keys=keys)))
    for label, recipe in recipes:
        params = params_from_recipe(ctx.space, recipe, stats)
        study.enqueue_trial(params, user_attrs={WARM_START: f"{label}: {recipe.name}"}, skip_if_exists=True)
    return [label for label, _ in recipes]


# --- the study's MLflow run ------------------------------------------------------------------


def _experiment_id(experiment_id: str | None) -> str | None:
    if experiment_id is not None:
        return experiment_id
    if os.environ.get("MLFLOW_EXPERIMENT_ID"):
        return os.environ["MLFLOW_EXPERIMENT_ID"]
    exp = mlflow.get_experiment_by_name(os.environ.get("MLFLOW_EXPERIMENT_NAME", ""))
    return exp.experiment_id if exp else None


@contextmanager
def study_run(study_name: str, experiment_id: str | None, tags: dict[str, str]) -> Iterator[mlflow.ActiveRun]:
    """The study's parent run: the latest one of the same study in the experiment, continued, or a new one."""
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


# --- one trial -------------------------------------------------------------------------------


def _objective(trial: optuna.Trial, ctx: _Context, n_trials: int) -> float | list[float]:
    started = time.perf_counter()
    trial.set_user_attr(HOST, socket.gethostname())
    trial.set_user_attr(PID, os.getpid())
    trial.set_user_attr(WORKER, ctx.worker)
    ahead = [t for t in trial.study.get_trials(deepcopy=False) if t.number < trial.number and counts_towards_total(t)]
    if len(ahead) >= n_trials:
        raise _Surplus(f"trial {trial.number}: {n_trials} trials already started by other workers")
    stats = ctx.prepared.stats
    recipe = suggest_recipe(trial, ctx.space, stats)
    trial.set_user_attr(RECIPE_ATTR, recipe.model_dump(mode="json", exclude_none=True))
    tags = {tracking.KIND: "trial", STUDY: ctx.study_name, TRIAL: str(trial.number),
            tracking.DATASET_DIGEST: stats.dataset_digest}
    try:
        with tracking.child_run(f"trial-{trial.number}", tags) as run:
            run_id = run.info.run_id
            trial.set_user_attr(RUN_ATTR, run_id)
            state, reason, timing = _evaluate(trial, ctx, recipe, run_id)
            timing["trial_s"] = time.perf_counter() - started
            tracking.log_batch(run_id, metrics={"trial_s": timing["trial_s"],
                                                "overhead_s": timing["trial_s"] - timing["train_eval_s"]},
                               tags={TRIAL_STATE: state.name, **({tracking.TAG + "reason": reason[:5000]} if reason else {})})
    except KeyboardInterrupt:
        trial.set_user_attr(INTERRUPTED, "interrupted by the user")
        raise
    ctx.run_times.append(timing)
    if state == TrialState.PRUNED:
        mlflow.MlflowClient().set_terminated(run_id, RunStatus.to_string(RunStatus.KILLED))
        trial.set_user_attr(PRUNE_REASON, reason)
        raise optuna.TrialPruned(reason)
    if state == TrialState.FAIL:
        mlflow.MlflowClient().set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED))
        trial.set_user_attr(FAIL_REASON, reason)
        raise TrialFailed(reason)
    # The objective is what the tracking store holds, not the in-memory value.
    logged = mlflow.MlflowClient().get_run(run_id).data.metrics
    values = [logged[name] for name in objective_names(ctx.search)]
    return values if ctx.search.multi_objective else values[0]


def _evaluate(trial: optuna.Trial, ctx: _Context, recipe: Recipe, run_id: str) -> tuple[TrialState, str, dict[str, float]]:
    """Select, compare seed by seed (reporting the running delta), log; the trial's outcome."""
    prepared, search = ctx.prepared, ctx.search
    timing = {"select_s": 0.0, "train_eval_s": 0.0}
    t0 = time.perf_counter()
    tracking.log_batch(run_id, params={**{f"param.{k}": v for k, v in trial.params.items()},
                                       "recipe": recipe.name, "recipe_digest": recipe.digest(),
                                       "repeat": recipe.repeat, "sample_size": recipe.sample_size,
                                       "conditions": "; ".join(c.describe() for c in recipe.conditions) or "none"})
    mlflow.log_text(yaml.safe_dump(recipe.model_dump(mode="json", exclude_none=True), sort_keys=False), "recipe.yaml")
    try:
        pool = recipe.select(prepared.stats)
    except PoolError as err:
        return TrialState.PRUNED, str(err), timing
    timing["select_s"] = time.perf_counter() - t0
    tracking.log_batch(run_id, metrics={"pool_size": pool.size, "pool_unique": pool.unique_size},
                       tags={tracking.POOL_DIGEST: pool.digest})
    if pool.unique_size < search.min_pool_size:
        return TrialState.PRUNED, (f"pool of {pool.unique_size} samples is below search.min_pool_size="
                                   f"{search.min_pool_size}"), timing
    pool_file = materialize(pool, prepared.dataset, prepared.pools_dir)  # the cells reuse this file
    tracking.log_pool_input(pool, prepared.dataset, prepared.stats, pool_file, context="trial")
    timing["select_s"] = time.perf_counter() - t0
    return _compare_by_seed(trial, ctx, pool, run_id, timing)


def _compare_by_seed(
    trial: optuna.Trial, ctx: _Context, pool: Pool, run_id: str, timing: dict[str, float]
) -> tuple[TrialState, str, dict[str, float]]:
    prepared = ctx.prepared
    pairs: list[tuple[CellResult, CellResult]] = []
    failures: list[str] = []
    for step, seed in enumerate(prepared.spec.seeds):
        one_seed = dataclasses.replace(prepared, spec=prepared.spec.model_copy(update={"seeds": [seed]}))
        try:
            comparison = compare_pools(one_seed, [pool], ctx.benchmarks)
        except PoolError as err:
            return TrialState.PRUNED, str(err), timing
        item = comparison.items[0]
        timing["train_eval_s"] += sum(c.train_s + c.eval_s for c in comparison.cells if not c.reused)
        failures += [f"{c.pool.name} seed {c.seed}: {c.reason}" for c in comparison.cells if not c.ok]
        pairs += item.paired()
        if not pairs:
            continue
        running = summarize_deltas([c.scores for c, _ in pairs], [b.scores for _, b in pairs])
        tracking.log_batch(run_id, metrics={"delta_pct_running": running.mean_pct}, step=step)
        if not ctx.search.multi_objective and step < len(prepared.spec.seeds) - 1:
            trial.report(running.mean_pct, step)
            if trial.should_prune():
                return TrialState.PRUNED, (f"pruned after {step + 1} of {len(prepared.spec.seeds)} seeds: running "
                                           f"delta {running.mean_pct:+.3f}% is below the pruner's threshold"), timing
    if not pairs:
        return TrialState.FAIL, "every cell failed: " + " | ".join(dict.fromkeys(failures)), timing
    summary = summarize_deltas([c.scores for c, _ in pairs], [b.scores for _, b in pairs])
    metrics = {"delta_pct": summary.mean_pct, "delta_std_pct": summary.std_pct, "seeds": len(pairs),
               "cells_failed": len(failures), "train_eval_s": timing["train_eval_s"], "select_s": timing["select_s"]}
    if math.isfinite(summary.p_value):
        metrics["p_value"] = summary.p_value
    tracking.log_batch(run_id, metrics=metrics)
    return TrialState.COMPLETE, "", timing


# --- the search ------------------------------------------------------------------------------


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
    ctx = _Context(prepared, benchmarks, space, search, study_name, worker)
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
        mlflow.log_text(yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False), "sandbox.yaml")
        fail_stale_trials(study)
        warm = enqueue_warm_start(study, ctx, parent.info.experiment_id)
        if warm:
            log.info("warm start: enqueued %s", ", ".join(warm))
        while counted_trials(study) < n_trials:
            try:
                study.optimize(lambda t: _objective(t, ctx, n_trials), n_trials=1, catch=(TrialFailed,),
                               gc_after_trial=False, show_progress_bar=False)
            except _Surplus as err:
                log.info("%s; stopping this worker", err)
                break
            ran += 1
        result = _log_results(study, ctx, run_id, storage_name, ran, time.perf_counter() - started)
        result.where = tracking.run_url(parent)
    return result


# --- results ---------------------------------------------------------------------------------


def trials_frame(study: optuna.Study, search: SearchSpec) -> pd.DataFrame:
    """One row per trial: number, state, objectives, params, reason, warm start, MLflow run."""
    names = objective_names(search)
    rows = []
    for t in study.get_trials(deepcopy=False):
        row: dict[str, Any] = {"trial": t.number, "state": t.state.name}
        for i, name in enumerate(names):
            row[name] = t.values[i] if t.values is not None else np.nan
        row.update(t.params)
        row["reason"] = t.user_attrs.get(PRUNE_REASON) or t.user_attrs.get(FAIL_REASON) or \
            t.user_attrs.get(INTERRUPTED, "")
        row["warm_start"] = t.user_attrs.get(WARM_START, "")
        row["duration_s"] = t.duration.total_seconds() if t.duration is not None else np.nan
        row["run_id"] = t.user_attrs.get(RUN_ATTR, "")
        rows.append(row)
    return pd.DataFrame(rows)


def best_trials(study: optuna.Study, search: SearchSpec) -> tuple[FrozenTrial | None, list[FrozenTrial]]:
    """The best trial (highest delta; on the Pareto front for [delta, size]) and the Pareto front."""
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return None, []
    if not search.multi_objective:
        return study.best_trial, []
    front = sorted(study.best_trials, key=lambda t: t.values[0], reverse=True)
    return front[0], front


def param_importances(study: optuna.Study) -> dict[str, float]:
    """Importances of the delta (optuna's default evaluator); empty below 2 distinct complete values."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 2 or len({t.values[0] for t in complete}) < 2:
        return {}
    try:
        # The default evaluator (PED-ANOVA) ranks what drives *low* targets: negate the maximised delta.
        return optuna.importance.get_param_importances(study, target=lambda t: -t.values[0])
    except (ValueError, RuntimeError) as err:  # e.g. every parameter constant across complete trials
        log.warning("no parameter importances: %s", err)
        return {}


def _log_results(
    study: optuna.Study, ctx: _Context, run_id: str, storage_name: str, ran: int, wall_s: float
) -> SearchResult:
    search = ctx.search
    frame = trials_frame(study, search)
    best, pareto = best_trials(study, search)
    importances = param_importances(study)
    best_recipe = None
    if best is not None and RECIPE_ATTR in best.user_attrs:
        best_recipe = parse_recipe({**best.user_attrs[RECIPE_ATTR], "name": f"{ctx.study_name}-best",
                                    "description": f"trial {best.number} of study {ctx.study_name}"},
                                   origin=f"trial {best.number}")
    states = frame["state"].value_counts().to_dict() if not frame.empty else {}
    metrics = {f"trials_{s.lower()}": float(states.get(s, 0)) for s in ("COMPLETE", "PRUNED", "FAIL")}
    metrics["trials_run_now"] = ran
    metrics["search_wall_s"] = wall_s
    if ctx.run_times:
        trial_s = sum(t["trial_s"] for t in ctx.run_times)
        model_s = sum(t["train_eval_s"] for t in ctx.run_times)
        metrics["overhead_share"] = max(0.0, (trial_s - model_s) / trial_s) if trial_s > 0 else 0.0
    if best is not None:
        metrics["best_delta_pct"] = best.values[0]
        metrics["best_trial"] = best.number
    # Metrics and tags, not params: every worker of a study (and every resume) updates them,
    # and MLflow params cannot change once logged.
    tracking.log_batch(run_id, metrics=metrics,
                       tags={tracking.TAG + "best_trial": str(best.number)} if best is not None else None)
    client = mlflow.MlflowClient()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        if not frame.empty:
            frame.to_csv(out / "trials.csv", index=False)
            # Written whole each time: log_table would append when another worker or a resume logs again.
            frame.to_json(out / "trials.json", orient="split", index=False)
            history = frame.rename(columns={"delta_pct": "value"})[["trial", "value"]]
            if history["value"].notna().any():
                figures.history_curve(history, out / "history.png", title=f"study {ctx.study_name}")
        if importances:
            figures.importance_bars(importances, out / "importance.png", title="parameter importance for the delta")
        if best_recipe is not None:
            export_recipe(best_recipe, out, text_key=ctx.prepared.spec.dataset.text_field)
        report = search_report(ctx, frame, best, pareto, importances, storage_name, out)
        (out / "report.md").write_text(report, encoding="utf-8")
        client.log_artifacts(run_id, str(out), ARTIFACTS)
    return SearchResult(ctx.study_name, storage_name, run_id, frame, best, best_recipe, pareto, importances,
                        ran, wall_s, "", report)


def search_report(
    ctx: _Context, frame: pd.DataFrame, best: FrozenTrial | None, pareto: Sequence[FrozenTrial],
    importances: dict[str, float], storage_name: str, out: Path,
) -> str:
    """The Markdown section of the search (``search/report.md``), figures linked relative to it."""
    search = ctx.search
    states = frame["state"].value_counts().to_dict() if not frame.empty else {}
    lines = [f"## Recipe search: study `{ctx.study_name}`", "",
             (f"{len(frame)} trials ({', '.join(f'{n} {s.lower()}' for s, n in states.items()) or 'none'}); "
             f"sampler `{search.sampler}`, pruner `{search.pruner}`, objectives {search.objectives}; "
             f"model `{ctx.prepared.spec.model.type}` fixed, seeds {ctx.prepared.spec.seeds}. "
             f"Delta = relative change of the benchmark scores over the random pool of equal size (%)."), "",
             "### Search space", "", pd.DataFrame(describe_space(ctx.space)).to_markdown(index=False), ""]
    if best is not None:
        lines += ["### Best recipe", "",
                  f"Trial {best.number}: delta **{best.values[0]:+.3f}%**"
                  + (f", pool size {best.values[1]:.0f}" if search.multi_objective else "") + ".", "",
                  "```yaml", yaml.safe_dump(best.user_attrs.get(RECIPE_ATTR, {}), sort_keys=False).rstrip(), "```", "",
                  "Exported as `best_recipe.yaml` and, for Data-Juicer, `best_recipe.data_juicer.yaml`.", ""]
    else:
        lines += ["No trial completed: see the reasons in the trials table.", ""]
    if pareto:
        rows = [{"trial": t.number, "delta_pct": t.values[0], "pool_size": t.values[1], **t.params} for t in pareto]
        lines += ["### Pareto front (delta vs pool size)", "",
                  pd.DataFrame(rows).to_markdown(index=False, floatfmt=".4g"), ""]
    if (out / "history.png").exists():
        lines += ["![optimisation history](history.png)", ""]
    if importances:
        table = pd.DataFrame({"param": list(importances), "importance": list(importances.values())})
        lines += ["### Parameter importance", "", table.to_markdown(index=False, floatfmt=".3f"), "",
                  "![parameter importance](importance.png)", ""]
    if not frame.empty:
        shown = frame.drop(columns=["run_id"]).sort_values("trial").tail(30)
        lines += ["### Trials", "", shown.to_markdown(index=False, floatfmt=".4g"), ""]
    lines += [f"Storage: `{storage_name}`. Live view: `optuna-dashboard {storage_name}`.", ""]
    return "\n".join(lines)
