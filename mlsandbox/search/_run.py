"""The study's one MLflow parent run, and what each call (a worker, a resume) logs to it.

The parent run's id is kept in the study itself (a user attribute in the Optuna storage), set
under the storage's lock: every worker and every resume of a study finds the same run, and
workers started together create it once. A run can be continued any number of times, so it
holds as params only what defines the study (its name and objectives, the data, model and
benchmarks it compares on), each logged once; what one call chooses (``n_trials``, the sampler
and its seed, the storage, the worker, ...) goes to ``mlsandbox.search.*`` tags, which show the
latest call, and to a record per call under ``search/invocations/``.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import mlflow
import optuna
from mlflow.entities import LifecycleStage
from mlflow.exceptions import MlflowException

from mlsandbox import tracking
from mlsandbox.search._names import INVOCATIONS, PARENT_RUN_ATTR, SETTING, STUDY, STUDY_RUN

log = logging.getLogger(__name__)

_PROJECT_RUN = "MLFLOW_RUN_ID"  # set by `mlflow run`: the project's own run
# The settings of a call shown as tags (the record holds them all, with host, pid and times).
_TAGGED = ("n_trials", "sampler", "sampler_seed", "pruner", "worker", "storage", "seeds", "min_pool_size", "budget")


@contextmanager
def study_run(
    study: optuna.Study, study_name: str, experiment_id: str | None, tags: Mapping[str, str]
) -> Iterator[mlflow.ActiveRun]:
    """The study's parent run, continued, or created (under ``mlflow run``: the project's run) and recorded.

    Call it under the storage's lock. It stays the active run while the trials run, so that
    each trial's run nests under it.
    """
    project_run = os.environ.get(_PROJECT_RUN)
    tags = {**tags, tracking.SHARED: "true"}  # one run for all the study's workers
    # A study without trials is new: a run tagged with its name belongs to another study of that name
    # (in another storage, or a deleted journal file's), not to this one.
    run_id = _recorded_run(study) or (_tagged_run(study_name, experiment_id, project_run)
                                      if study.get_trials(deepcopy=False) else None)
    if run_id is None or run_id == project_run:
        with tracking.parent_run(f"search/{study_name}", experiment_id, tags) as run:
            study.set_user_attr(PARENT_RUN_ATTR, run.info.run_id)
            yield run
        return
    log.info("continuing the study's MLflow run %s", run_id)
    study.set_user_attr(PARENT_RUN_ATTR, run_id)
    if project_run:
        # `mlflow run` made a run for this call: it points to the study's run, where the trials go.
        tracking.log_batch(project_run, tags={STUDY_RUN: run_id, STUDY: study_name,
                                              tracking.ENTRY_POINT: "search"})
        del os.environ[_PROJECT_RUN]  # else MLflow would resume it for every trial's run
    try:
        with tracking.continue_run(run_id, tags) as run:
            yield run
    finally:
        if project_run:
            os.environ[_PROJECT_RUN] = project_run


def _recorded_run(study: optuna.Study) -> str | None:
    """The run the study names, if this tracking store holds it (and it is not deleted)."""
    run_id = study.user_attrs.get(PARENT_RUN_ATTR)
    if not isinstance(run_id, str):
        return None
    try:
        run = mlflow.MlflowClient().get_run(run_id)
    except MlflowException:
        log.warning("the study's MLflow run %s is not in this tracking store: starting a new one", run_id)
        return None
    if run.info.lifecycle_stage == LifecycleStage.DELETED:
        log.warning("the study's MLflow run %s was deleted: starting a new one", run_id)
        return None
    return run_id


def _tagged_run(study_name: str, experiment_id: str | None, project_run: str | None) -> str | None:
    """A study that names no run yet (made by an earlier version): its latest run in the experiment."""
    if experiment_id is None or project_run or "'" in study_name:  # a quote cannot be in a filter's value
        return None
    runs = mlflow.MlflowClient().search_runs(
        [experiment_id], f"tags.`{STUDY}` = '{study_name}' and tags.`{tracking.KIND}` = 'search'",
        order_by=["attributes.start_time DESC"], max_results=1)
    return runs[0].info.run_id if runs else None


def log_study_params(run_id: str, params: Mapping[str, Any]) -> None:
    """Params that define the study, each logged once: a value that differs now is logged as a warning.

    MLflow params cannot change; ``mlflow run`` also logs its entry point's own parameters.
    Call it under the storage's lock, so that workers started together log each param once.
    """
    logged = mlflow.MlflowClient().get_run(run_id).data.params
    new = {k: v for k, v in params.items() if k not in logged}
    for key, value in params.items():
        if key in logged and logged[key] != str(value):
            log.warning("the study's run has the param %s=%s; this call uses %s (see the tags %s* and %s/)",
                        key, logged[key], value, SETTING, INVOCATIONS)
    if new:
        tracking.log_batch(run_id, params=new)


def log_invocation(run_id: str, settings: Mapping[str, Any], name: str | None = None) -> str:
    """The settings of this call as ``mlsandbox.search.*`` tags and as a record under ``search/invocations/``.

    Returns the record's file name; pass it back with the outcome added, once the call is done,
    to rewrite the record (the tags stay as they are).
    """
    if name is None:
        # Two calls of one process within a second (a library user, a test) keep their own records.
        stamp = time.strftime('%Y%m%dT%H%M%S', time.gmtime())
        name = f"{stamp}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}.json"
        tracking.log_batch(run_id, tags={SETTING + k: "" if settings[k] is None else str(settings[k])
                                         for k in _TAGGED if k in settings})
    mlflow.MlflowClient().log_text(run_id, json.dumps(dict(settings), indent=1, default=str), f"{INVOCATIONS}/{name}")
    return name
