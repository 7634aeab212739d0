"""Warm start: a new study's first trials are recipes already known to be good.

The latest workflow's best recipe and the k-sigma recipe are enqueued as the first trials. Each
such trial trains its recipe exactly as it is (under the search's ``budget``, if one is set), so
its score is that recipe's; its params are the point of the search space that selects the same
pool, from which the sampler goes on. A recipe that no point of the space selects (a bound
outside the searched ranges, a condition on a stat the space lacks) would credit its score to a
point that does not produce it: the nearest point is enqueued instead, trained as that point.
"""

from __future__ import annotations

import logging

import mlflow
import optuna
from mlflow.exceptions import MlflowException
from optuna.trial import TrialState

from mlsandbox import tracking
from mlsandbox.artifacts import BEST_RECIPE
from mlsandbox.errors import PoolError, first_line
from mlsandbox.executors.prepare import Prepared
from mlsandbox.files import scratch_folder
from mlsandbox.recipes import Recipe, ksigma_recipe, load_recipe
from mlsandbox.search._names import NEAREST_POINT, WARM_RECIPE, WARM_START, WORKFLOW_START
from mlsandbox.search._space import SearchSpace, params_from_recipe, recipe_from_params
from mlsandbox.search._trials import counts_towards_total
from mlsandbox.spec import SearchSpec
from mlsandbox.stats import StatsTable

log = logging.getLogger(__name__)


def latest_workflow_recipe(experiment_id: str | None) -> Recipe | None:
    """The best recipe of the latest finished ``workflow`` run of the experiment, if any."""
    if experiment_id is None:
        return None
    runs = mlflow.MlflowClient().search_runs(
        [experiment_id], f"tags.`{tracking.ENTRY_POINT}` = 'workflow' and attributes.status = 'FINISHED'",
        order_by=["attributes.end_time DESC"], max_results=5)
    for run in runs:
        with scratch_folder("warm-start") as tmp:
            try:
                path = tracking.download_artifacts(run.info.run_id, BEST_RECIPE, tmp)
            except (MlflowException, OSError) as err:  # no best recipe in that run: try the previous one
                log.debug("run %s has no %s: %s", run.info.run_id, BEST_RECIPE, err)
                continue
            # A starting point, trained as it now selects: not a claim to reproduce a measurement.
            return load_recipe(path).model_copy(update={"measured": None})
    return None


def enqueue_warm_start(
    study: optuna.Study, space: SearchSpace, prepared: Prepared, search: SearchSpec, experiment_id: str | None
) -> list[str]:
    """Enqueue the workflow's best recipe and the k-sigma recipe as the first trials of a new study."""
    if study.get_trials(deepcopy=False):
        return []
    stats, spec = prepared.stats, prepared.spec
    recipes: list[tuple[str, Recipe]] = []
    if search.warm_start.workflow:
        best = latest_workflow_recipe(experiment_id)
        if best is not None:
            recipes.append((WORKFLOW_START, best))
    if search.warm_start.ksigma:
        keys = [s.stat for s in space.stats]
        recipes.append(("ksigma", ksigma_recipe(stats, spec.refine.ksigma, keys=keys)))
    for label, recipe in recipes:
        params = params_from_recipe(space, recipe, stats)
        trained, name = _within_budget(recipe, space), f"{label}: {recipe.name}"
        point = recipe_from_params(space, params, stats, name=recipe.name)
        ours, theirs = _pool_of(trained, stats), _pool_of(point, stats)
        if ours[0] != theirs[0]:
            log.warning("warm start: the %s recipe %r is no point of the search space (it selects %s, its nearest "
                        "point %s): that point is enqueued instead, and trained as that point",
                        label, recipe.name, ours[1], theirs[1])
            trained, name = point, f"{name}{NEAREST_POINT}"
        study.enqueue_trial(params, user_attrs={WARM_START: name,
                                                WARM_RECIPE: trained.model_dump(mode="json", exclude_none=True)},
                            skip_if_exists=True)
    return [label for label, _ in recipes]


def _pool_of(recipe: Recipe, stats: StatsTable) -> tuple[str | None, str]:
    """The digest of the pool the recipe selects (None: none it could train), and its size in words."""
    try:
        pool = recipe.select(stats)
    except PoolError as err:
        return None, f"no pool ({first_line(err)})"
    return pool.digest, f"{pool.unique_size} samples"


def requeue_interrupted_warm_starts(study: optuna.Study) -> list[str]:
    """Enqueue again each warm-start recipe whose trial was interrupted (a kill, Ctrl-C: not
    counted) and that has no other trial waiting, running or counted: a continued study measures
    the recipes already known to be good, rather than leaving them to the sampler."""
    trials = study.get_trials(deepcopy=False)
    settled = {t.user_attrs.get(WARM_START) for t in trials
               if t.state in (TrialState.WAITING, TrialState.RUNNING) or counts_towards_total(t)}
    interrupted = {t.user_attrs[WARM_START]: t for t in trials
                   if WARM_START in t.user_attrs and t.user_attrs[WARM_START] not in settled}
    for label, trial in interrupted.items():
        study.enqueue_trial(trial.system_attrs.get("fixed_params", trial.params),
                            user_attrs={WARM_START: label, WARM_RECIPE: trial.user_attrs[WARM_RECIPE]})
    return list(interrupted)


def _within_budget(recipe: Recipe, space: SearchSpace) -> Recipe:
    """The recipe as every trial of the space trains it: a fixed budget is a seeded subsample."""
    if space.budget is None:
        return recipe
    return recipe.model_copy(update={"sample_size": max(1, space.budget // recipe.repeat), "seed": space.seed})
