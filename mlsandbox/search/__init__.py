"""Optuna recipe search: a study whose trials are recipes, trained, scored and logged to MLflow.

Each trial draws a recipe from the search space, selects its pool from the cached stats table,
and compares it with the random pool of equal size under a child run of the study's MLflow run;
the objective is the ``delta_pct`` metric read back from that run. :func:`run_search` runs or
continues a study; the space functions map between recipes and points of the space.
"""

from mlsandbox.search._names import BEST_RECIPE, STUDY, TRIAL, TRIAL_STATE
from mlsandbox.search._objective import TrialFailed
from mlsandbox.search._ray import run_search_on_ray
from mlsandbox.search._report import SearchResult
from mlsandbox.search._space import (
    Dimension,
    SearchSpace,
    StatSpace,
    build_space,
    describe_space,
    objective_names,
    params_from_recipe,
    recipe_from_params,
    suggest_params,
    suggest_recipe,
)
from mlsandbox.search._storage import JOURNAL_FILE, default_storage_path, open_storage
from mlsandbox.search._study import run_search

__all__ = [
    "BEST_RECIPE",
    "JOURNAL_FILE",
    "STUDY",
    "TRIAL",
    "TRIAL_STATE",
    "Dimension",
    "SearchResult",
    "SearchSpace",
    "StatSpace",
    "TrialFailed",
    "build_space",
    "default_storage_path",
    "describe_space",
    "objective_names",
    "open_storage",
    "params_from_recipe",
    "recipe_from_params",
    "run_search",
    "run_search_on_ray",
    "suggest_params",
    "suggest_recipe",
]
