"""Where cells run: one after another in this process, or as Ray tasks on any node of a cluster.

A step hands its runner one round of cells at a time (every pool of the round and its per-seed
controls) and gets each result back as it finishes, so progress, reuse and the race work the
same with both. A cell is keyed by its content (:func:`~mlsandbox.executors.cells.cell_key`)
and trained under a lock on that key, so two drivers (or two tasks) never train it twice: the
second finds it finished and reuses it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from mlsandbox import tracking
from mlsandbox.cluster import check_fits, connect
from mlsandbox.credentials import Scrubber, scrubbed_output, secrets_in
from mlsandbox.errors import first_line
from mlsandbox.executors.cell_result import CellResult, CellStatus
from mlsandbox.executors.cells import active_run_id, run_cell
from mlsandbox.executors.fidelity import Fidelity
from mlsandbox.executors.prepare import Prepared
from mlsandbox.models import BenchmarkSet
from mlsandbox.pools import Pool

log = logging.getLogger(__name__)

ExecutorName = Literal["local", "ray"]


@dataclass(frozen=True)
class CellRequest:
    pool: Pool
    seed: int
    fidelity: Fidelity


Done = Callable[[CellRequest, CellResult], None]
Started = Callable[[CellRequest], None]  # a cell begins: progress names it while it runs


@dataclass
class Placement:
    """What every cell runs against: the prepared data, the benchmarks, and its MLflow parent."""

    prepared: Prepared
    benchmarks: BenchmarkSet
    experiment_id: str
    parent_run_id: str | None


def _run(where: Placement, request: CellRequest) -> CellResult:
    return run_cell(where.prepared, request.pool, request.seed, where.benchmarks, request.fidelity.model,
                    where.experiment_id, where.parent_run_id, fidelity=request.fidelity.name)


class LocalRunner:
    """Cells in this process, in order: each uses the cores its model asks for."""

    def __init__(self, where: Placement) -> None:
        self.where = where

    def run(self, requests: Sequence[CellRequest], done: Done, started: Started | None = None) -> None:
        for request in requests:
            if started is not None:
                started(request)
            done(request, _run(self.where, request))


def _cell_task(where: Placement, request: CellRequest, environment: dict[str, str]) -> CellResult:
    """A cell inside a Ray worker: it logs where the driver does, its output scrubbed as the driver's is."""
    tracking.adopt_run_environment(environment)
    with scrubbed_output(Scrubber(secrets_in(environment.get("MLFLOW_TRACKING_URI")))):
        return _run(where, request)


class RayRunner:
    """Cells as Ray tasks (``num_cpus`` and ``num_gpus`` each), submitted a round at a time to the cluster at
    ``address`` (``RAY_ADDRESS`` or a local one). The tracking store must be reachable from every
    node: an MLflow server, or a SQLite/file store on a shared file system."""

    def __init__(self, where: Placement, address: str | None = None, num_cpus: float = 1.0,
                 num_gpus: float = 0.0) -> None:
        self.ray = ray = connect(address)
        check_fits(ray, num_cpus, num_gpus)
        self.where, self.parent_run_id = ray.put(where), where.parent_run_id or active_run_id()  # as run_cell's
        self.task = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus, max_retries=0)(_cell_task)
        self.environment = tracking.run_environment()

    def run(self, requests: Sequence[CellRequest], done: Done, started: Started | None = None) -> None:
        """Every request as a task at once (the cluster queues them); ``started`` is not called: which of
        them run now is the cluster's business."""
        pending: dict[Any, CellRequest] = {
            self.task.remote(self.where, request, self.environment): request for request in requests}
        try:
            while pending:
                ready, _ = self.ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    request = pending.pop(ref)
                    done(request, self._result(ref, request))
        except KeyboardInterrupt as err:  # SIGINT or SIGTERM: the tasks' workers stop with this driver
            for ref in pending:  # and the queued ones must not start meanwhile, after their parent ended
                self.ray.cancel(ref, force=True)
            if pending and self.parent_run_id:
                tracking.release_interrupted_work(err)
                tracking.end_children(self.parent_run_id, tracking.interruption_reason(err))
            raise

    def _result(self, ref: Any, request: CellRequest) -> CellResult:
        """The cell's result; FAILED with the reason when its worker or node died under it (the
        other cells go on, as after a trainer's crash). An error the cell raised is raised here."""
        from ray.exceptions import RayError, RayTaskError

        try:
            result: CellResult = self.ray.get(ref)
        except RayTaskError as err:  # the cell's own error, as its type (exit codes), not Ray's chain of wrappers
            raise err.as_instanceof_cause() from None
        except RayError as err:
            reason = f"its Ray task was lost: {type(err).__name__}: {first_line(err)}"
            log.error("cell %s seed %d failed: %s", request.pool.name, request.seed, reason)
            return CellResult(request.pool, request.seed, "", CellStatus.FAILED, reason=reason)
        return result


def make_runner(name: ExecutorName, where: Placement, address: str | None = None,
                num_cpus: float = 1.0, num_gpus: float = 0.0) -> LocalRunner | RayRunner:
    """The runner of ``--executor``: ``local`` (default) or ``ray``."""
    if name == "ray":
        return RayRunner(where, address, num_cpus, num_gpus)
    return LocalRunner(where)
