"""The names a study writes into MLflow and Optuna, in one place for the modules that write and read them."""

from __future__ import annotations

from mlsandbox import tracking

# MLflow tags of the study's parent run and of its trial runs.
STUDY = tracking.TAG + "study"
TRIAL = tracking.TAG + "trial"
TRIAL_STATE = tracking.TAG + "trial_state"
REASON = tracking.TAG + "reason"
#: Tag prefix of the settings of the latest call on the study's run (n_trials, sampler, seed, ...).
SETTING = tracking.TAG + "search."
#: Tag of a project run (``mlflow run``) that continued a study logged to another, earlier run.
STUDY_RUN = tracking.TAG + "study_run"
#: The parent run's artifact folder (report, trials table, figures, best recipe).
ARTIFACTS = "search"
#: The study's best recipe there (our YAML), as the search exports it.
BEST_RECIPE = ARTIFACTS + "/best_recipe.yaml"
#: Under it, one record per call (worker or resume): its settings and what it ran.
INVOCATIONS = ARTIFACTS + "/invocations"

# Study user attributes: the study's one MLflow parent run, found again by every worker and resume.
PARENT_RUN_ATTR = "mlflow_parent_run_id"
#: What makes the study's trials comparable (data, model, evaluator, benchmarks, seeds, budget),
#: set by its first call; a later call that differs is refused.
DEFINITION_ATTR = "definition"

# Trial user attributes: why a trial ended as it did, and who ran it.
RECIPE_ATTR = "recipe"
MEASURED_ATTR = "measured_pool"  # the pool the trial's recipe selected (a recipe's ``measured``)
RUN_ATTR = "mlflow_run_id"
PRUNE_REASON = "prune_reason"
FAIL_REASON = "fail_reason"
INTERRUPTED = "interrupted"
WARM_START = "warm_start"
#: The warm-start label of the workflow's best recipe ("workflow: <name>"), which the workflow chose by its deltas.
WORKFLOW_START = "workflow"
#: Ends the warm-start label of a recipe the space cannot express, trained as its nearest point.
NEAREST_POINT = " (nearest point)"
#: On a warm-start trial's run: which recipe it trains as it is ("workflow: <name>", "ksigma: <name>").
WARM_START_TAG = tracking.TAG + "warm_start"
#: The recipe a warm-start trial trains as it is (its params are only the nearest point of the space).
WARM_RECIPE = "warm_start_recipe"
HOST, PID, WORKER = "host", "pid", "worker"
PROCESS = "process"  # the worker's identity (host boot, pid namespace, start time): see tracking.owner_tags
