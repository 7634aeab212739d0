"""Which trials count towards ``n_trials``, and failing the trials a dead worker left RUNNING, runs and all.

A re-run continues a study up to ``n_trials``: only trials that ran to an outcome count, so
interrupted and orphaned trials are run again as new trials instead of shrinking the study.
"""

from __future__ import annotations

import logging
import os
import warnings

import mlflow
import optuna
from mlflow.exceptions import MlflowException
from optuna.trial import FrozenTrial, TrialState

from mlsandbox import tracking
from mlsandbox.files import pid_exists
from mlsandbox.search._names import FAIL_REASON, HOST, PARENT_RUN_ATTR, PID, PROCESS, RUN_ATTR, TRIAL, TRIAL_STATE

log = logging.getLogger(__name__)

#: Why a lost worker's trial run ended KILLED (the trials table gives such a trial the same reason).
LOST_WORKER = "its worker stopped without an outcome (killed, or its heartbeat was lost)"


def counts_towards_total(trial: FrozenTrial) -> bool:
    """A trial counts towards ``n_trials`` if it ran to an outcome (or is running now).

    Interrupted trials (Ctrl-C, a killed worker) and surplus trials are not counted, so that a
    resumed study still runs the requested number of real trials.
    """
    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING):
        return True
    return trial.state == TrialState.FAIL and FAIL_REASON in trial.user_attrs


def counted_trials(study: optuna.Study) -> int:
    """The trials of the study that count towards ``n_trials``."""
    return sum(counts_towards_total(t) for t in study.get_trials(deepcopy=False))


def fail_stale_trials(study: optuna.Study, ownerless: bool = False,
                      objectives: tuple[str, ...] = ("delta_pct",)) -> list[int]:
    """Fail RUNNING trials whose worker process on this machine is gone; heartbeats do the rest.
    Then end the MLflow runs those workers left RUNNING. Call it only while this process runs no
    trial: a RUNNING trial of its own is a leftover.

    ``ownerless``: called under the storage's trial lock (:meth:`Storage.trial_lock`), which every
    worker holds from creating a trial until the trial names its owner, so a RUNNING trial that
    names none lost its worker in between (a kill right after Optuna created it): else it would
    stay RUNNING, and counted, for good.

    "This machine" is this host's boot and pid namespace: a worker in a container under the same
    host name is alive for all this process can see, and is left to the storage's heartbeat.
    """
    with warnings.catch_warnings():  # experimental since optuna 2.9, stable in use
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)  # RDB storages with heartbeats: any machine
    left = [t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)) if _left_over(t, ownerless)]
    stale = [t.number for t in left if not _settle_logged_outcome(study, t, objectives)]
    for number in stale:
        study.tell(number, state=TrialState.FAIL, skip_if_finished=True)
    if stale:
        log.warning("marked trials %s FAILED: their worker process is gone (not counted)", stale)
    _end_lost_runs(study)
    return stale


def _settle_logged_outcome(study: optuna.Study, trial: FrozenTrial, objectives: tuple[str, ...]) -> bool:
    """Complete a lost worker's trial whose run already logged it complete (the state tag comes last,
    after the metrics): a kill after the measurement, before Optuna was told, would else FAIL a trial
    that was measured whole, and a new trial would measure another recipe in its place."""
    run_id = trial.user_attrs.get(RUN_ATTR)
    if not isinstance(run_id, str):
        return False
    client = mlflow.MlflowClient()
    try:
        run = client.get_run(run_id)
        metrics = run.data.metrics
        if run.data.tags.get(TRIAL_STATE) != "COMPLETE" or not all(k in metrics for k in objectives):
            return False
        if run.info.status != "FINISHED":
            client.set_terminated(run_id, "FINISHED")
            if tracking.END_REASON in run.data.tags:  # "owner gone", from a reconcile that ran first: not so
                client.delete_tag(run_id, tracking.END_REASON)
        study.tell(trial.number, [metrics[k] for k in objectives], skip_if_finished=True)  # last: a store that
    except MlflowException as err:  # fails first leaves a FAIL
        log.warning("trial %d: could not read the outcome its run %s logged: %s", trial.number, run_id, err)
        return False
    log.warning("trial %d was measured and logged to its run %s when its worker stopped: it keeps its values",
                trial.number, run_id)
    return True


def _end_lost_runs(study: optuna.Study) -> None:
    """End KILLED, with the reason, the runs (a trial's and its cells') of trials that FAILED while
    their worker was gone, failed above or by Optuna's heartbeat (here, in ``optimize`` or in
    another worker): else they stay RUNNING until the next command starts. The trials are read
    before the runs: a live worker ends its trial's run before the trial ends, so a run still
    RUNNING after its trial ended has lost its worker."""
    parent = study.user_attrs.get(PARENT_RUN_ATTR)
    if not isinstance(parent, str):
        return
    failed = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
    lost = {str(t.number) for t in failed if not counts_towards_total(t)}
    if not lost:
        return
    client = mlflow.MlflowClient()
    try:
        running = client.search_runs([client.get_run(parent).info.experiment_id],
                                     f"tags.`mlflow.parentRunId` = '{parent}' and attributes.status = 'RUNNING'")
        for run in (r for r in running if r.data.tags.get(TRIAL) in lost):
            tracking.end_with_children(run.info.run_id, LOST_WORKER)
            log.warning("trial %s's run %s was left RUNNING by its lost worker; marked KILLED",
                        run.data.tags[TRIAL], run.info.run_id)
    except MlflowException as err:  # tidying up after a dead worker must not stop this one
        log.warning("could not end the runs of trials whose worker is gone: %s", err)


def _left_over(trial: FrozenTrial, ownerless: bool = False) -> bool:
    host, pid, process = (trial.user_attrs.get(k) for k in (HOST, PID, PROCESS))
    if not isinstance(host, str) or not isinstance(pid, int):
        return ownerless
    me = tracking.owner_tags()
    if process is None:  # a trial of an earlier version, which recorded no identity: its pid decides
        return host == me[tracking.OWNER_HOST] and (pid == os.getpid() or not pid_exists(pid))
    if (process, pid) == (me[tracking.OWNER_PROCESS], os.getpid()):
        return True  # this process runs no trial yet: a RUNNING trial of its own is a leftover
    owner = {tracking.OWNER_HOST: host, tracking.OWNER_PID: str(pid), tracking.OWNER_PROCESS: str(process)}
    return tracking.owner_gone(owner) is not None
