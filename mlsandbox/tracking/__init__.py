"""MLflow conventions: experiments, parent/child runs, dataset inputs, lineage tags, metric names.

Everything the sandbox writes to MLflow goes through here, so that the names a user filters on
in the UI (``tags.mlsandbox.op = 'stopwords_filter'``) are the same in every workflow.

Run lifecycle: every run started through :func:`parent_run`, :func:`child_run` or
:func:`continue_run` records its owner (host, pid, process start time) and a heartbeat that a
timer refreshes while the run lasts. A run interrupted by SIGINT (or SIGTERM, which the command
line turns into :class:`~mlsandbox.errors.Terminated`) ends KILLED with the reason in
``mlsandbox.end_reason``. A run whose process died without ending it (``kill -9``, a crashed
machine) is ended KILLED by :func:`reconcile_stale_runs`, which every new parent run calls.
"""

from mlsandbox.tracking._logging import (
    download_artifacts,
    log_artifacts,
    log_batch,
    log_benchmark_inputs,
    log_pool_input,
    log_source_input,
    log_table,
    metric_key,
    pool_frame,
    pool_tags,
    remove_artifacts,
    run_url,
)
from mlsandbox.tracking._names import (
    DATASET_DIGEST,
    END_REASON,
    ENTRY_POINT,
    HEARTBEAT,
    HEARTBEAT_S,
    KIND,
    OP,
    OWNER_HOST,
    OWNER_PID,
    OWNER_PROCESS,
    OWNER_STARTED,
    PARENT_RUN_ID,
    POOL_DIGEST,
    PROJECT,
    RECIPE_DIGEST,
    SEED,
    SHARED,
    SPLIT,
    STALE_AFTER_S,
    TAG,
    TRAINED_UNDER,
)
from mlsandbox.tracking._owners import (
    heartbeat,
    heartbeat_interval,
    owner_gone,
    owner_tags,
    reconcile_stale_runs,
    stale_after,
)
from mlsandbox.tracking._runs import (
    adopt_run_environment,
    adopt_runs_named,
    child_run,
    continue_run,
    describe_run,
    end_active_runs,
    end_children,
    end_with_children,
    experiment_of,
    find_run,
    interruption_reason,
    keep_running,
    parent_run,
    release_interrupted_work,
    run_environment,
    search_runs,
    use_experiment,
)
from mlsandbox.tracking._store import (
    check_tracking_store,
    create_sqlite_store,
    hide_run_links,
    shown_tracking_uri,
    sqlite_file,
    store_lost,
)

__all__ = [
    "DATASET_DIGEST", "END_REASON", "ENTRY_POINT", "HEARTBEAT", "HEARTBEAT_S", "KIND", "OP", "OWNER_HOST",
    "OWNER_PID", "OWNER_PROCESS", "OWNER_STARTED", "PARENT_RUN_ID", "POOL_DIGEST", "PROJECT", "RECIPE_DIGEST", "SEED",
    "SHARED", "SPLIT", "STALE_AFTER_S", "TAG", "TRAINED_UNDER", "adopt_run_environment", "adopt_runs_named", "child_run", "continue_run", "describe_run",
    "check_tracking_store", "create_sqlite_store", "download_artifacts", "end_active_runs", "end_children", "end_with_children", "experiment_of", "find_run", "heartbeat",
    "heartbeat_interval", "hide_run_links", "search_runs", "shown_tracking_uri", "store_lost",
    "interruption_reason", "release_interrupted_work", "keep_running", "log_artifacts", "log_batch", "log_benchmark_inputs", "log_pool_input", "log_table",
    "log_source_input", "metric_key", "owner_gone", "owner_tags", "parent_run", "pool_frame", "pool_tags",
    "reconcile_stale_runs", "remove_artifacts", "run_environment", "run_url", "sqlite_file", "stale_after", "use_experiment",
]
