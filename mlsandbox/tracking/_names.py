"""The names of mlsandbox's MLflow tags, and the run-lifecycle settings."""

from __future__ import annotations

from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

TAG = "mlsandbox."
KIND = TAG + "kind"  # workflow | pool | cell | candidate | search | trial | evaluation | apply
DATASET_DIGEST = TAG + "dataset_digest"
POOL_DIGEST = TAG + "pool_digest"
OP = TAG + "op"
SPLIT = TAG + "split"
SEED = TAG + "seed"
RECIPE_DIGEST = TAG + "recipe_digest"  # the recipe that selects the pool, where one does
PROJECT = TAG + "project"
ENTRY_POINT = TAG + "entry_point"

# The process that owns a run, and its last sign of life (see reconcile_stale_runs).
OWNER_HOST = TAG + "owner.host"
OWNER_PID = TAG + "owner.pid"
#: When the owning process started (ISO 8601, UTC), so that a reused pid is not taken for the owner.
OWNER_STARTED = TAG + "owner.started"
#: ``<boot id>/<pid namespace>/<start ticks>`` on Linux: the exact identity of the owning process.
OWNER_PROCESS = TAG + "owner.process"
#: ISO 8601 (UTC) time of the owner's last heartbeat.
HEARTBEAT = TAG + "heartbeat"
#: "true" on a run that several processes continue at once (a study's run, one per worker): the
#: owner tags name only the latest, so its heartbeat, which every one of them refreshes, decides.
SHARED = TAG + "shared"
#: Why a run ended other than FINISHED: interrupted, terminated, failed, or found dead.
END_REASON = TAG + "end_reason"
#: On a cell moved under the run that reused it: the run it was trained under.
TRAINED_UNDER = TAG + "trained_under"
PARENT_RUN_ID = MLFLOW_PARENT_RUN_ID

#: Seconds between two heartbeats of a run's owner (environment: ``MLSANDBOX_HEARTBEAT_S``).
HEARTBEAT_S = 60.0
#: A run owned by another machine is stale when its heartbeat is older than this
#: (environment: ``MLSANDBOX_STALE_AFTER_S``).
STALE_AFTER_S = 600.0

# MLflow caps a param value at 6000 characters; longer values (lists of OPs) are cut visibly.
MAX_PARAM = 6000
