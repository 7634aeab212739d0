"""One trial: draw a recipe, select its pool, compare it with the random pool seed by seed, log it.

Each trial is a child MLflow run of the study's run, with the trial's cells nested under it. The
objective is the ``delta_pct`` metric read back from that run, so the study optimises exactly
what MLflow shows. A pool too small to train on is a PRUNED trial with its reason; a crashing
trainer is a FAILED trial, and the study goes on. A trial that starts once other workers have
started the study's ``n_trials`` (the race at a study's end) runs nothing: it FAILs with the reason
:data:`SURPLUS_REASON`, is not counted, and its worker stops.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import mlflow
import optuna
from mlflow.entities import RunStatus
from optuna.trial import TrialState

from mlsandbox import tracking
from mlsandbox.delta import DeltaSummary, summarize_deltas
from mlsandbox.errors import PoolError
from mlsandbox.executors.cell_result import CellResult
from mlsandbox.executors.compare import compare_pools
from mlsandbox.executors.fidelity import deciding
from mlsandbox.executors.prepare import Prepared
from mlsandbox.models import BenchmarkSet
from mlsandbox.pools import RECIPE, Pool
from mlsandbox.progress import Progress
from mlsandbox.recipes import Recipe, parse_recipe, recipe_text
from mlsandbox.search._names import (
    FAIL_REASON,
    HOST,
    INTERRUPTED,
    MEASURED_ATTR,
    PID,
    PROCESS,
    PRUNE_REASON,
    REASON,
    RECIPE_ATTR,
    RUN_ATTR,
    STUDY,
    TRIAL,
    TRIAL_STATE,
    WARM_RECIPE,
    WARM_START,
    WARM_START_TAG,
    WORKER,
)
from mlsandbox.search._space import SearchSpace, objective_names, suggest_recipe
from mlsandbox.search._trials import counts_towards_total
from mlsandbox.spec import SearchSpec
from mlsandbox.stats import StatsTable

Outcome = tuple[TrialState, str, dict[str, float]]  # state, reason, timings (s)


class TrialFailed(RuntimeError):
    """Every cell of the trial failed (the trainer crashed): the trial FAILs, the study goes on."""


#: Why a surplus trial (user attribute ``interrupted``) ran nothing: a FAIL that is not counted.
SURPLUS_REASON = "surplus: the study already had its trials when this one started (not run, not counted)"


class Surplus(RuntimeError):
    """Other workers already started the requested number of trials."""

    def __init__(self, number: int, n_trials: int) -> None:
        super().__init__(f"trial {number}: {n_trials} trials already started by other workers")
        self.number = number


class _ExpectedEnds(logging.Filter):
    """Optuna logs a trial that raised with the traceback, then a second line saying it failed with no
    value. A surplus trial ran nothing and is no failure (the worker says once that it stops): both
    lines are dropped. An interruption (Ctrl-C, SIGTERM) or a :class:`TrialFailed` (its failed cells
    are logged already) keeps the first line, which names the error, without the traceback."""

    def __init__(self) -> None:
        super().__init__()
        self._second: set[str] = set()  # Optuna's second line of each such trial, still to come

    def filter(self, record: logging.LogRecord) -> bool:
        err = record.exc_info[1] if record.exc_info else None
        number = re.match(r"Trial (\d+) failed", record.getMessage())
        if isinstance(err, (Surplus, TrialFailed, KeyboardInterrupt)) and number:
            self._second.add(f"Trial {number[1]} failed with value None.")
            record.exc_info, record.exc_text = None, None
            return not isinstance(err, Surplus)
        if record.getMessage() in self._second:
            self._second.discard(record.getMessage())
            return False
        return True


logging.getLogger("optuna.study._optimize").addFilter(_ExpectedEnds())


@dataclass
class TrialContext:
    """What every trial of one call needs, built once: data, benchmarks, space, settings, parent run."""

    prepared: Prepared
    benchmarks: BenchmarkSet
    space: SearchSpace
    search: SearchSpec
    study_name: str
    worker: int | None  # None: a worker that was given no index
    run_id: str  # the study's parent run, which each trial's run nests under
    run_times: list[dict[str, float]] = field(default_factory=list)  # per trial this call ran
    progress: Progress | None = None  # the study's: it names the trial and seed under way
    owned: Callable[[], None] | None = None  # releases the storage's trial lock once the trial names its owner
    confirm_trained: dict[str, frozenset[str]] = field(default_factory=dict)  # pool digest -> cells trained before the report


def objective(trial: optuna.Trial, ctx: TrialContext, n_trials: int) -> float | list[float]:
    """Run one trial as a child run of the study's run; its objective value(s) as logged. A Ctrl-C
    or SIGTERM at any point of it, its first steps included, is recorded on the trial."""
    try:
        return _trial(trial, ctx, n_trials)
    except KeyboardInterrupt as err:
        trial.set_user_attr(INTERRUPTED, tracking.interruption_reason(err))
        raise


def _trial(trial: optuna.Trial, ctx: TrialContext, n_trials: int) -> float | list[float]:
    started = time.perf_counter()
    owner = tracking.owner_tags()  # first: until it is recorded, a kill leaves a trial no one can tell is lost
    trial.set_user_attr(HOST, owner[tracking.OWNER_HOST])
    trial.set_user_attr(PID, int(owner[tracking.OWNER_PID]))
    trial.set_user_attr(PROCESS, owner[tracking.OWNER_PROCESS])
    if ctx.owned is not None:
        ctx.owned()
    tracking.keep_running(ctx.run_id)  # another worker that left may have ended the study's run
    if ctx.worker is not None:
        trial.set_user_attr(WORKER, ctx.worker)
    ahead = [t for t in trial.study.get_trials(deepcopy=False) if t.number < trial.number and counts_towards_total(t)]
    if len(ahead) >= n_trials:  # the end-of-study race between workers: this one came late
        trial.set_user_attr(INTERRUPTED, SURPLUS_REASON)
        raise Surplus(trial.number, n_trials)
    stats = ctx.prepared.stats
    recipe = suggest_recipe(trial, ctx.space, stats)  # every trial draws every param (fixed ones if enqueued)
    if WARM_RECIPE in trial.user_attrs:  # a warm start trains its recipe as it is
        recipe = parse_recipe({**trial.user_attrs[WARM_RECIPE], "name": recipe.name}, origin=f"trial {trial.number}")
    trial.set_user_attr(RECIPE_ATTR, recipe.model_dump(mode="json", exclude_none=True))
    tags = {tracking.KIND: "trial", STUDY: ctx.study_name, TRIAL: str(trial.number),
            tracking.DATASET_DIGEST: stats.dataset_digest, tracking.RECIPE_DIGEST: recipe.digest(),
            tracking.SPLIT: RECIPE, **({WARM_START_TAG: trial.user_attrs[WARM_START]} if WARM_START in trial.user_attrs else {})}
    with tracking.child_run(f"trial-{trial.number}", tags, parent_run_id=ctx.run_id) as run:
        run_id = run.info.run_id
        trial.set_user_attr(RUN_ATTR, run_id)
        state, reason, timing = _evaluate(trial, ctx, recipe, run_id)
        timing["trial_s"] = time.perf_counter() - started
        tracking.log_batch(run_id, metrics={"trial_s": timing["trial_s"],
                                            "overhead_s": timing["trial_s"] - timing["train_eval_s"]},
                           tags={TRIAL_STATE: state.name, **({REASON: reason[:5000]} if reason else {})})
    ctx.run_times.append(timing)
    client = mlflow.MlflowClient()
    if state == TrialState.PRUNED:
        client.set_terminated(run_id, RunStatus.to_string(RunStatus.KILLED))
        trial.set_user_attr(PRUNE_REASON, reason)
        raise optuna.TrialPruned(reason)
    if state == TrialState.FAIL:
        client.set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED))
        trial.set_user_attr(FAIL_REASON, reason)
        raise TrialFailed(reason)
    # The objective is what the tracking store holds, not the in-memory value.
    logged = client.get_run(run_id).data.metrics
    values = [logged[name] for name in objective_names(ctx.search)]
    return values if ctx.search.multi_objective else values[0]


def _evaluate(trial: optuna.Trial, ctx: TrialContext, recipe: Recipe, run_id: str) -> Outcome:
    """Select, compare seed by seed (reporting the running delta), log; the trial's outcome."""
    prepared, search = ctx.prepared, ctx.search
    timing = {"select_s": 0.0, "train_eval_s": 0.0}
    t0 = time.perf_counter()
    tracking.log_batch(run_id, params={**{f"param.{k}": v for k, v in trial.params.items()},
                                       "recipe": recipe.name, "recipe_digest": recipe.digest(),
                                       "repeat": recipe.repeat, "sample_size": recipe.sample_size,
                                       "conditions": "; ".join(c.describe() for c in recipe.conditions) or "none"})
    try:
        pool = recipe.select(prepared.stats)
    except PoolError as err:
        mlflow.MlflowClient().log_text(run_id, recipe_text(recipe), "recipe.yaml")
        return TrialState.PRUNED, str(err), timing
    measured = recipe.measured_as(pool, prepared.stats, run_id)
    mlflow.MlflowClient().log_text(run_id, recipe_text(measured), "recipe.yaml")
    timing["select_s"] = time.perf_counter() - t0
    assert measured.measured is not None
    trial.set_user_attr(MEASURED_ATTR, measured.measured.model_dump(mode="json"))
    tracking.log_batch(run_id, metrics={"pool_size": pool.size, "pool_unique": pool.unique_size},
                       tags={tracking.POOL_DIGEST: pool.digest})
    if pool.unique_size < search.min_pool_size:
        return TrialState.PRUNED, (f"pool of {pool.unique_size} samples is below search.min_pool_size="
                                   f"{search.min_pool_size}"), timing
    if _keeps_every_sample(recipe, pool, prepared.stats):  # a delta of 0 by construction, not a measurement
        return TrialState.PRUNED, (f"the recipe keeps all {len(prepared.stats)} samples of the dataset: its pool "
                                   "draws what its random control draws, so there is nothing to compare"), timing
    pool_file = prepared.pool_file(pool, prepared.spec.model)  # the cells reuse this file
    tracking.log_pool_input(pool, prepared.dataset, prepared.stats, pool_file, context="trial", run_id=run_id)
    timing["select_s"] = time.perf_counter() - t0
    return _compare_by_seed(trial, ctx, pool, run_id, timing)


def _keeps_every_sample(recipe: Recipe, pool: Pool, stats: StatsTable) -> bool:
    """Whether the recipe's conditions keep the whole dataset: its pool is then a random draw, like
    its control's, whether or not the search's ``budget`` subsamples it."""
    if pool.unique_size == len(stats):
        return True
    return recipe.sample_size is not None and (
        recipe.model_copy(update={"sample_size": None, "measured": None}).select(stats).unique_size == len(stats))


def _compare_by_seed(trial: optuna.Trial, ctx: TrialContext, pool: Pool, run_id: str, timing: dict[str, float]) -> Outcome:
    """One seed at a time, so that the pruner can stop a trial whose running delta is poor."""
    prepared = ctx.prepared
    seeds = prepared.spec.trial_seeds()
    pairs: list[tuple[CellResult, CellResult]] = []
    failures: dict[str, list[str]] = {}  # reason -> the cells that failed so
    for step, seed in enumerate(seeds):
        if ctx.progress is not None:
            ctx.progress.working(f"trial {trial.number} seed {seed} ({step + 1} of {len(seeds)}, running)")
        try:
            comparison = compare_pools(prepared, [pool], ctx.benchmarks, levels=[deciding(prepared.spec, [seed])])
        except PoolError as err:
            return TrialState.PRUNED, str(err), timing
        timing["train_eval_s"] += sum(c.train_s + c.eval_s for c in comparison.cells if not c.reused)
        for c in comparison.cells:
            if not c.ok:
                failures.setdefault(c.reason, []).append(f"{c.pool.name} seed {c.seed}")
        pairs += comparison.items[0].paired()
        if not pairs:
            continue
        running = _delta(pairs)
        tracking.log_batch(run_id, metrics={"delta_pct_running": running.mean_pct}, step=step)
        if not ctx.search.multi_objective and step < len(seeds) - 1:
            trial.report(running.mean_pct, step)
            if trial.should_prune():
                return TrialState.PRUNED, (f"pruned after {step + 1} of {len(seeds)} seeds: running "
                                           f"delta {running.mean_pct:+.3f}% is below the pruner's threshold"), timing
    if not pairs:
        return TrialState.FAIL, "every cell failed: " + " | ".join(
            f"{cells[0]}: {reason}" + (f" (and {len(cells) - 1} more cells)" if len(cells) > 1 else "")
            for reason, cells in failures.items()), timing
    summary = _delta(pairs)
    metrics = {"delta_pct": summary.mean_pct, "seeds": len(pairs),
               "cells_failed": sum(map(len, failures.values())), "train_eval_s": timing["train_eval_s"], "select_s": timing["select_s"]}
    claim = {"delta_std_pct": summary.std_pct, "delta_ci_low_pct": summary.ci_low_pct,
             "delta_ci_high_pct": summary.ci_high_pct, "p_value": summary.p_value}
    for key, value in claim.items():
        if math.isfinite(value):  # undefined with one seed
            metrics[key] = value
            trial.set_user_attr(key, value)  # for the study's report of its best trial
    tracking.log_batch(run_id, metrics=metrics)
    return TrialState.COMPLETE, "", timing


def _delta(pairs: Sequence[tuple[CellResult, CellResult]]) -> DeltaSummary:
    return summarize_deltas([c.scores for c, _ in pairs], [b.scores for _, b in pairs])
