"""The run lifecycle: parent, child and continued runs, owned by this process and ended with a reason."""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import mlflow
from mlflow.entities import Experiment, Run, RunStatus
from mlflow.exceptions import MlflowException
from mlflow.store.entities.paged_list import PagedList

from mlsandbox.credentials import scrub_known
from mlsandbox.errors import (
    InvalidInputError,
    InvalidRunError,
    first_line,
    interruption_reason,
)
from mlsandbox.tracking._logging import checked_active_run, log_batch
from mlsandbox.tracking._names import END_REASON, ENTRY_POINT, KIND
from mlsandbox.tracking._owners import CLAIMED, HEARTBEATS, claim, owner_tags, reconcile_stale_runs
from mlsandbox.tracking._store import (
    check_artifact_location,
    check_tracking_store,
    give_up_on_store,
    hide_run_links,
    shown_tracking_uri,
    sqlite_file,
    store_lost,
    sync_at_checkpoints,
)

log = logging.getLogger(__name__)


def use_experiment(name: str) -> str | None:
    """The experiment of this sandbox project, unless ``mlflow run`` or the environment chose one.

    None means: let MLflow take ``MLFLOW_EXPERIMENT_ID`` / ``MLFLOW_EXPERIMENT_NAME``.
    """
    check_tracking_store()
    if run_id := os.environ.get("MLFLOW_RUN_ID"):
        try:
            experiment_id = mlflow.get_run(run_id).info.experiment_id
        except MlflowException:
            raise InvalidRunError(f"MLFLOW_RUN_ID={run_id}: no such run in {shown_tracking_uri()}") from None
        check_artifact_location(experiment_id)
        claim(run_id)
        return experiment_id
    chosen = os.environ.get("MLFLOW_EXPERIMENT_ID")
    if chosen and chosen not in _OURS:
        _check_live(_experiment_or_none(lambda: mlflow.get_experiment(chosen)), f"MLFLOW_EXPERIMENT_ID={chosen}")
        return None
    if env_name := os.environ.get("MLFLOW_EXPERIMENT_NAME"):
        _check_name(env_name, "MLFLOW_EXPERIMENT_NAME")
        return None
    try:
        experiment_id = mlflow.set_experiment(name).experiment_id
    except MlflowException:
        _check_name(name)  # a deleted experiment says how to restore it; any other error stands
        raise
    _OURS.add(experiment_id)  # set_experiment exports it as MLFLOW_EXPERIMENT_ID: not the user's choice
    check_artifact_location(experiment_id)
    return experiment_id


_OURS: set[str] = set()
_MAX_NAME = 500  # MLflow's limit on an experiment's name


def _experiment_or_none(get: Callable[[], Experiment | None]) -> Experiment | None:
    try:
        return get()
    except MlflowException:  # a malformed id, or none such
        return None


def _check_live(experiment: Experiment | None, what: str) -> None:
    """An experiment the runs may go to (``what`` chose it, if the environment did): one that exists
    and is not deleted."""
    if experiment is None:
        raise InvalidInputError(f"{what}: no such experiment in {shown_tracking_uri()}")
    if experiment.lifecycle_stage == "deleted":
        chosen = f"{what}: " if what else ""
        raise InvalidInputError(f"{chosen}experiment {experiment.name!r} (id {experiment.experiment_id}) is deleted: "
                                f"restore it (mlflow experiments restore --experiment-id {experiment.experiment_id}) "
                                "or remove it for good (mlflow gc)")


def _check_name(name: str, what: str = "") -> None:
    """An experiment of this name (from ``what``, if the environment named it) can be used: created
    if missing, not if it is deleted or too long."""
    if len(name) > _MAX_NAME:
        raise InvalidInputError(f"{what or 'experiment'}: name {name[:40]!r}... has {len(name)} characters; "
                                f"MLflow allows {_MAX_NAME}")
    existing = _experiment_or_none(lambda: mlflow.get_experiment_by_name(name))
    if existing is not None:
        _check_live(existing, what)

#: What a process's environment says about where its runs go (``mlflow run`` and the user set them).
RUN_ENVIRONMENT = ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID")
#: How the MLflow client reaches the store (credentials, TLS, retries and timeouts): the same on a cluster.
CLIENT_SETTINGS = ("MLFLOW_TRACKING_", "MLFLOW_HTTP_REQUEST_")


#: The driver's working directory, handed to the processes it starts on a cluster.
_DRIVER_CWD = "MLSANDBOX_DRIVER_CWD"


def run_environment() -> dict[str, str]:
    """This process's tracking store (a SQLite file by its absolute path), MLflow client settings
    (:data:`CLIENT_SETTINGS`), run variables and working directory, to hand to a process on a cluster."""
    uri = mlflow.get_tracking_uri()
    if (database := sqlite_file(uri)) is not None:
        from sqlalchemy.engine import make_url

        uri = make_url(uri).set(database=str(database)).render_as_string(hide_password=False)
    return {**{k: v for k, v in os.environ.items() if k.startswith(CLIENT_SETTINGS)},
            "MLFLOW_TRACKING_URI": uri, _DRIVER_CWD: os.getcwd(),
            **{v: os.environ[v] for v in RUN_ENVIRONMENT[1:] if v in os.environ}}


def adopt_run_environment(environment: Mapping[str, str]) -> None:
    """Make this process (a Ray worker, started with the cluster's environment and folder, not the
    driver's) log where the driver does: its tracking store and exactly its MLflow run variables;
    and work in the driver's folder where this node has it (a shared file system), so that paths the
    user gave relative to it (the workspace, a trainer's script) mean what they mean to the driver."""
    environment = dict(environment)
    cwd = environment.pop(_DRIVER_CWD, "")
    if cwd and os.path.isdir(cwd):
        os.chdir(cwd)
    elif cwd:
        log.warning("the driver's folder %s is not on this node: relative paths resolve in %s", cwd, os.getcwd())
    for var in RUN_ENVIRONMENT:
        os.environ.pop(var, None)
    os.environ.update(environment)
    mlflow.set_tracking_uri(environment["MLFLOW_TRACKING_URI"])
    hide_run_links(environment["MLFLOW_TRACKING_URI"])
    sync_at_checkpoints()


@contextmanager
def parent_run(name: str, experiment_id: str | None, tags: Mapping[str, str]) -> Iterator[mlflow.ActiveRun]:
    """The run of one command; under ``mlflow run`` it is the project's own run.

    Before the command's work starts, runs of the experiment left RUNNING by dead processes are
    ended KILLED (:func:`reconcile_stale_runs`).
    """
    resumed = bool(os.environ.get("MLFLOW_RUN_ID"))
    tags = {**tags, **owner_tags()}
    with _owned(mlflow.start_run(run_name=name, experiment_id=experiment_id, tags=tags)) as run:
        if resumed:
            log_batch(run.info.run_id, tags=tags)  # not every MLflow version tags a resumed run
        _reconcile_quietly(run.info.experiment_id)
        yield run


@contextmanager
def child_run(name: str, tags: Mapping[str, str], parent_run_id: str | None = None) -> Iterator[mlflow.ActiveRun]:
    """A run nested in its parent (``mlflow.parentRunId``): ``parent_run_id``, which must be the
    active run where one is active (in a worker process, such as a Ray task, none is), or else the
    active run. The child is created in its parent's experiment.

    The child is the active run while it lasts, so that dataset inputs can be logged to it.
    """
    tags = {**tags, **owner_tags()}
    experiment_id = None
    if mlflow.active_run() is not None:
        checked_active_run(parent_run_id)
        parent_run_id = None  # MLflow nests under the active run without looking the parent up again
    elif parent_run_id:
        experiment_id = experiment_of(parent_run_id)
    with _owned(mlflow.start_run(run_name=name, nested=True, parent_run_id=parent_run_id, tags=tags,
                                 experiment_id=experiment_id)) as run:
        yield run


@contextmanager
def continue_run(run_id: str, tags: Mapping[str, str] | None = None) -> Iterator[mlflow.ActiveRun]:
    """An earlier run made active again (RUNNING), owned by this process from now on.

    Use it instead of ``mlflow.start_run(run_id=...)``: without the new owner's tags the run
    would look abandoned to :func:`reconcile_stale_runs` as soon as its first owner is gone.
    Like :func:`parent_run`, it first ends the experiment's abandoned runs.
    """
    tags = {**(tags or {}), **owner_tags()}
    with _owned(mlflow.start_run(run_id=run_id)) as run:
        _clear_end_reason(run_id)
        log_batch(run.info.run_id, tags=tags)
        _reconcile_quietly(run.info.experiment_id)
        yield run
        _clear_end_reason(run_id)  # it finishes now: what another process of a shared run said is over


def _clear_end_reason(run_id: str) -> None:
    """Remove why the run stopped before: no longer true of a run that runs, or finishes, now."""
    if END_REASON in mlflow.MlflowClient().get_run(run_id).data.tags:
        mlflow.MlflowClient().delete_tag(run_id, END_REASON)


def keep_running(run_id: str) -> None:
    """Mark the run RUNNING again where another process ended it: a shared run (:data:`SHARED`) that
    one of its processes ended on leaving while this one goes on working in it."""
    if mlflow.MlflowClient().get_run(run_id).info.status != "RUNNING":
        mlflow.MlflowClient().update_run(run_id, status="RUNNING")
        _clear_end_reason(run_id)
        log.info("run %s was ended by another of its processes; this one still works in it", run_id)


def _reconcile_quietly(experiment_id: str) -> None:
    try:
        reconcile_stale_runs(experiment_id)
    except MlflowException as err:  # tidying up others' runs must not stop this one
        log.warning("could not look for abandoned runs: %s", err)


@contextmanager
def _owned(active: mlflow.ActiveRun) -> Iterator[mlflow.ActiveRun]:
    """The run while it lasts: kept alive by the heartbeat, ended with a reason when it does not finish.

    An interruption (SIGINT, or SIGTERM as :class:`Terminated`) or an exit of the process while the
    run lasts (``SystemExit``: Ray's workers raise it on SIGTERM) ends the run KILLED; any other
    exception leaves MLflow's FAILED; each records why in ``mlsandbox.end_reason``.
    """
    run_id = active.info.run_id
    HEARTBEATS.add(run_id)
    try:
        with active:
            try:
                yield active
            except KeyboardInterrupt as err:
                release_interrupted_work(err)
                _end(run_id, RunStatus.KILLED, interruption_reason(err))
                raise
            except SystemExit as err:  # the process is made to exit: a Ray worker on SIGTERM, its driver gone
                _end(run_id, RunStatus.KILLED, f"its process was stopped ({first_line(err) or 'SystemExit'})")
                raise
            except Exception as err:
                if store_lost(err):
                    give_up_on_store()
                _tag_quietly(run_id, {END_REASON: scrub_known(f"failed: {type(err).__name__}: {err}")[:5000]})
                raise
    finally:
        HEARTBEATS.discard(run_id)


def release_interrupted_work(err: BaseException) -> None:
    """Free what the interrupted code held before this process writes to the store again.

    An interruption is no ``Exception``: one raised inside a store write (MLflow's session,
    SQLite's commit) skips their rollback, and the traceback's frames keep the connection, and a
    SQLite store's write lock, alive; ending the runs would then wait on that lock, and fail.
    Clearing the finished frames and collecting lets the connection close and roll back."""
    traceback.clear_frames(err.__traceback__)
    gc.collect()


def end_active_runs(reason: str, status: int = RunStatus.KILLED) -> list[str]:
    """End every run still active in this process (innermost first) with ``status`` and ``reason``.

    The command line calls it after an interruption, for runs started outside :func:`parent_run`
    and :func:`child_run`; those two end their own runs already.
    """
    ended: list[str] = []
    while (active := mlflow.active_run()) is not None and active.info.run_id not in ended:
        ended.append(active.info.run_id)  # a run the store failed to end stays active: stop there
        _end(active.info.run_id, status, reason)
    for run_id in CLAIMED:  # `mlflow run`'s, if the command was stopped before its own run started
        with contextlib.suppress(MlflowException):  # not in this store (another command's, in one process)
            if run_id not in ended and mlflow.MlflowClient().get_run(run_id).info.status == "RUNNING":
                _end(run_id, status, reason)
                ended.append(run_id)
    return ended


def end_with_children(run_id: str, reason: str, status: int = RunStatus.KILLED) -> list[str]:
    """End the run and its children that are still RUNNING (children first) with ``status`` and
    ``reason``; their ids. For work whose process is known to be gone before
    :func:`reconcile_stale_runs` can tell (a search trial that Optuna's heartbeat failed)."""
    ended = end_children(run_id, reason, status)
    if mlflow.MlflowClient().get_run(run_id).info.status == "RUNNING":
        _end(run_id, status, reason)
        ended.append(run_id)
    return ended


def end_children(run_id: str, reason: str, status: int = RunStatus.KILLED) -> list[str]:
    """End the run's children that are still RUNNING with ``status`` and ``reason``; their ids. For
    children whose processes stop with this one (the Ray tasks of an interrupted command)."""
    client = mlflow.MlflowClient()
    experiment_id = client.get_run(run_id).info.experiment_id
    query = f"tags.`mlflow.parentRunId` = '{run_id}' and attributes.status = 'RUNNING'"
    ended, token = [], None
    while True:
        page = search_runs([experiment_id], query, page_token=token)
        for child in page:
            _end(child.info.run_id, status, reason)
            ended.append(child.info.run_id)
        if not (token := page.token):
            return ended


def _end(run_id: str, status: int, reason: str) -> None:
    """End the run with ``status`` and the reason tag; a tracking store that fails now is only logged."""
    _tag_quietly(run_id, {END_REASON: reason})
    active = mlflow.active_run()
    try:
        if active is not None and active.info.run_id == run_id:
            mlflow.end_run(RunStatus.to_string(status))
        else:
            mlflow.MlflowClient().set_terminated(run_id, RunStatus.to_string(status))
    except Exception as err:  # the run stays RUNNING; the next reconcile_stale_runs ends it
        log.warning("could not end run %s as %s: %s", run_id, RunStatus.to_string(status), err)


def _tag_quietly(run_id: str, tags: Mapping[str, str]) -> None:
    try:
        log_batch(run_id, tags=tags)
    except Exception as err:
        log.warning("could not tag run %s: %s", run_id, err)


def search_runs(experiment_ids: list[str], query: str, **kwargs: Any) -> PagedList[Run]:
    """``MlflowClient.search_runs`` with Python's cyclic garbage collector paused meanwhile. MLflow's
    SQL store builds an object for each param, metric and tag of every run it returns (about 20,000
    for the 372 cells of the default workflow), and the collector would walk the command's whole
    heap again and again while they pile up: the search took two to three times as long."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return mlflow.MlflowClient().search_runs(experiment_ids, query, **kwargs)
    finally:
        if was_enabled:
            gc.enable()


def find_run(run_id: str, expected: str) -> Run:
    """The run ``run_id``, or :class:`InvalidRunError` naming it and ``expected`` (what the command
    takes, e.g. "a workflow run") when the tracking store has no such run."""
    if not run_id.strip():
        raise InvalidRunError(f"a run id is required (got {run_id!r}); expected {expected}")
    database = sqlite_file(mlflow.get_tracking_uri())
    if database is not None and database.parent.is_dir() and not database.exists():  # (a missing folder: said below)
        raise InvalidRunError(f"no run {run_id!r}: the tracking store {shown_tracking_uri()} does not exist (run the "
                              f"command where the runs' mlflow.db is, or set MLFLOW_TRACKING_URI); expected {expected}")
    check_tracking_store()
    try:
        run = mlflow.MlflowClient().get_run(run_id)
    except MlflowException as err:
        if err.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise InvalidRunError(
                f"no run {run_id!r} in the tracking store {shown_tracking_uri()}; expected {expected}"
            ) from None
        raise
    if run.info.lifecycle_stage == "deleted":  # what the UI no longer shows is not what a command works from
        raise InvalidRunError(f"run {run_id} is deleted (mlflow runs restore --run-id {run_id} brings it back); "
                              f"expected {expected}")
    return run


def describe_run(run: Run) -> str:
    """What kind of run this is, in words: ``a pool run``, ``a `train` run``, ``a cell``, ..."""
    tags = run.data.tags
    kind, entry = tags.get(KIND), tags.get(ENTRY_POINT)
    if kind == "workflow" and entry:
        return f"a `{entry}` run"
    if kind == "cell":
        return "a cell (training run)"
    if kind in ("pool", "trial", "search", "evaluation", "candidate", "apply"):
        return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} run"
    return "a run not made by mlsandbox"


def adopt_runs_named(experiment_id: str, name: str, parent_run_id: str, reason: str) -> None:
    """Make the runs named ``name`` that a subprocess started (``mlflow run`` of a trainer's MLflow
    project) children of ``parent_run_id``; end those still RUNNING KILLED with ``reason``: a
    subprocess stopped by its timeout or an interruption cannot end its own run."""
    client = mlflow.MlflowClient()
    for run in client.search_runs([experiment_id], f"attributes.run_name = '{name}'"):
        client.set_tag(run.info.run_id, "mlflow.parentRunId", parent_run_id)
        if run.info.status == "RUNNING":
            _end(run.info.run_id, RunStatus.KILLED, reason)


def experiment_of(run_id: str | None) -> str:
    """The experiment of the run ``run_id``, or of the active run when None."""
    if run_id is not None:
        return mlflow.get_run(run_id).info.experiment_id
    return checked_active_run(None).info.experiment_id
