"""A study's trial workers as Ray tasks: N workers on any nodes of a cluster, one Optuna storage.

Each task is an ordinary search worker (:func:`run_search` with its own index, so its draws
differ from the others'); workers share the study through its storage, which every node must
reach (an RDB URL such as PostgreSQL; the default journal file serves one machine only), and log
to the driver's tracking store. When they are done, the driver continues the study itself (it
runs a trial only if a worker stopped early) and reports it as one worker would.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import optuna

from mlsandbox import tracking
from mlsandbox.cluster import check_fits, cluster_cpus, connect
from mlsandbox.errors import first_line
from mlsandbox.progress import Progress, StyleArg
from mlsandbox.search._names import INTERRUPTED, RUN_ATTR
from mlsandbox.search._report import SearchResult
from mlsandbox.search._storage import connect_storage
from mlsandbox.search._study import run_search, total_trials
from mlsandbox.search._trials import counts_towards_total
from mlsandbox.spec import ExperimentSpec

POLL_S = 5.0
#: How long interrupted workers get to end their runs before the driver exits.
STOP_WAIT_S = 10.0

log = logging.getLogger(__name__)


def _worker(spec: ExperimentSpec, study_name: str, storage: str | None, n_trials: int, worker: int,
            environment: dict[str, str]) -> int:
    """One trial worker inside a Ray task, logging where the driver does: the trials it ran."""
    tracking.adopt_run_environment(environment)
    return run_search(spec, study_name, storage, n_trials, worker=worker, progress=False).ran


def run_search_on_ray(spec: ExperimentSpec, study_name: str | None = None, storage: str | None = None,
                      n_trials: int | None = None, trial_workers: int | None = None,
                      progress: StyleArg = True) -> SearchResult:
    """Run (or continue) the study with ``trial_workers`` Ray tasks (default: one per
    ``executor.cpus_per_cell`` CPUs of the cluster); the result of the whole study."""
    started = time.perf_counter()
    n_trials = total_trials(n_trials, spec.search)  # before connecting: 0 is refused, not the default
    ray = connect(spec.executor.address, purpose="search on Ray")
    check_fits(ray, spec.executor.cpus_per_cell, spec.executor.gpus_per_cell)
    study_name = study_name or f"{spec.name}-search"
    count = trial_workers or max(1, int(cluster_cpus(ray) // spec.executor.cpus_per_cell))
    task = ray.remote(num_cpus=spec.executor.cpus_per_cell, num_gpus=spec.executor.gpus_per_cell,
                      max_retries=0)(_worker)
    environment = tracking.run_environment()
    opened = connect_storage(storage, spec)
    first = len(_trials(opened.optuna, study_name))
    pending = [task.remote(spec, study_name, storage, n_trials, worker, environment) for worker in range(count)]
    ran = 0
    with Progress(n_trials, f"study {study_name} ({count} Ray workers)", "trial", progress) as bar:
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1, timeout=POLL_S)
                for ref in ready:
                    ran += _trials_ran(ray, ref)
                done = min(n_trials, sum(map(_ended, _trials(opened.optuna, study_name))))
                if done > bar.done:
                    bar.advance(done - bar.done)
        except BaseException as err:  # each other worker is interrupted in turn and ends its trial's runs
            _stop(ray, pending)
            reason = (tracking.interruption_reason(err) if isinstance(err, KeyboardInterrupt)
                      else f"stopped: another trial worker failed ({first_line(err)})")
            _end_left_cells(opened.optuna, study_name, first, reason)
            raise
    result = run_search(spec, study_name, storage, n_trials, worker=count, progress=False)
    result.ran += ran
    if ran:  # the driver's own call logged only the trials it ran itself
        tracking.log_batch(result.run_id, metrics={"trials_run_now": result.ran})
    result.wall_s = time.perf_counter() - started
    return result


def _trials_ran(ray: Any, ref: Any) -> int:
    """What a finished worker reports: the trials it ran; 0 for one whose process or node died,
    whose trial the driver fails and runs again when the others are done."""
    try:
        return int(ray.get(ref))
    except ray.exceptions.RayTaskError as err:  # a worker's error, as its own type (exit codes)
        raise err.as_instanceof_cause() from None
    except ray.exceptions.RayError as err:
        log.warning("a trial worker stopped: %s; the study goes on without it", first_line(err))
        return 0


def _ended(trial: optuna.trial.FrozenTrial) -> bool:
    """A trial done for the progress bar: one that counts towards ``n_trials`` and is no longer running."""
    return counts_towards_total(trial) and trial.state != optuna.trial.TrialState.RUNNING


def _stop(ray: Any, pending: list[Any]) -> None:
    """Interrupt the workers (a KeyboardInterrupt in each, as Ctrl-C is in a local search) and wait for
    them to end their trials and runs: the driver's exit would kill them half-way, leaving them RUNNING."""
    for ref in pending:
        ray.cancel(ref)
    if pending:
        ray.wait(pending, num_returns=len(pending), timeout=STOP_WAIT_S)


def _end_left_cells(storage: optuna.storages.BaseStorage, study_name: str, first: int, reason: str) -> None:
    """End the cells that this call's interrupted trials (from trial ``first`` on) left RUNNING: a worker
    stopped mid-write cannot, and its cells' owner (a pooled Ray worker process) may live on."""
    for trial in _trials(storage, study_name)[first:]:
        if INTERRUPTED in trial.user_attrs and (run_id := trial.user_attrs.get(RUN_ATTR)):
            tracking.end_children(run_id, reason)


def _trials(storage: optuna.storages.BaseStorage, study_name: str) -> list[optuna.trial.FrozenTrial]:
    """The study's trials; none before a worker has created the study."""
    try:
        return optuna.load_study(study_name=study_name, storage=storage).get_trials(deepcopy=False)
    except KeyError:
        return []
