"""Which trials count towards ``n_trials``, and failing the trials a dead worker left RUNNING.

A re-run continues a study up to ``n_trials``: only trials that ran to an outcome count, so
interrupted and orphaned trials are run again as new trials instead of shrinking the study.
"""

from __future__ import annotations

import logging
import os
import socket
import warnings

import optuna
from optuna.trial import FrozenTrial, TrialState

from mlsandbox.files import pid_exists
from mlsandbox.search._names import FAIL_REASON, HOST, PID

log = logging.getLogger(__name__)


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


def fail_stale_trials(study: optuna.Study) -> list[int]:
    """Fail RUNNING trials whose worker process on this machine is gone; heartbeats do the rest."""
    with warnings.catch_warnings():  # experimental since optuna 2.9, stable in use
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)  # RDB storages with heartbeats: any machine
    host = socket.gethostname()
    stale = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        pid = t.user_attrs.get(PID)
        if t.user_attrs.get(HOST) == host and isinstance(pid, int) and not _alive(pid):
            study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)
            stale.append(t.number)
    if stale:
        log.warning("marked trials %s FAILED: their worker process is gone (not counted)", stale)
    return stale


def _alive(pid: int) -> bool:
    # This process runs no trial yet: a RUNNING trial with our pid is a leftover.
    return pid != os.getpid() and pid_exists(pid)
