"""The names a study writes into MLflow and Optuna, in one place for the modules that write and read them."""

from __future__ import annotations

from mlsandbox import tracking

# MLflow tags of the study's parent run and of its trial runs.
STUDY = tracking.TAG + "study"
TRIAL = tracking.TAG + "trial"
TRIAL_STATE = tracking.TAG + "trial_state"
REASON = tracking.TAG + "reason"
#: The parent run's artifact folder (report, trials table, figures, best recipe).
ARTIFACTS = "search"

# Trial user attributes: why a trial ended as it did, and who ran it.
RECIPE_ATTR = "recipe"
RUN_ATTR = "mlflow_run_id"
PRUNE_REASON = "prune_reason"
FAIL_REASON = "fail_reason"
INTERRUPTED = "interrupted"
WARM_START = "warm_start"
HOST, PID, WORKER = "host", "pid", "worker"
