"""The Ray stats engine: a pass's batches as a Ray Dataset, computed with ``map_batches`` on
any node of a cluster.

The driver loads and checks the dataset as always and hands the batches still to compute to
Ray as Arrow blocks, one block per batch of the local engine's grid, so every batch holds the
same rows as locally and the values are the same. Cheap OPs run as batch functions on Ray tasks;
a pass of model-backed OPs runs on a pool of actors, each loading its models once (and
reserving a GPU when its OPs want one and the cluster has one). Results stream back to the
driver, which checkpoints each finished batch and writes the same per-OP Parquet cache as the
local engine.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import numpy as np
import pyarrow as pa

from mlsandbox.cluster import cluster_cpus, cluster_gpus, connect
from mlsandbox.errors import SandboxError
from mlsandbox.stats._passes import OpSpecs, PassJob, columns_of, compute_batch, op_specs

#: The row number each result carries back, so batches may finish in any order.
ROW = "__mlsandbox_row"


def _compute_block(batch: pa.Table, specs: OpSpecs, names: list[str]) -> pa.Table:
    values = compute_batch(specs, columns_of(batch, names))
    return pa.table({ROW: batch[ROW], **values})


class _StatsActor:
    """An actor of a model pass: its OPs (and their models) are built once, then reused."""

    def __init__(self, specs: OpSpecs, names: list[str]) -> None:
        self.specs, self.names = specs, names

    def __call__(self, batch: pa.Table) -> pa.Table:
        return _compute_block(batch, self.specs, self.names)


class RayEngine:
    """Passes as Ray Datasets on the cluster at ``address`` (``RAY_ADDRESS``, else a local one)."""

    def __init__(self, workers: int, address: str | None = None) -> None:
        self.ray: ModuleType = connect(address, purpose="stats.engine ray")
        self.workers = workers or cluster_cpus(self.ray)
        context = self.ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # the sandbox shows its own progress ...
        # ... and Ray Data's plan chatter would bury it; a failed task's error is raised to the pass, which
        # reports it (logged here too, it would print each task's traceback before the command's one line)
        logging.getLogger("ray.data").setLevel(logging.CRITICAL)
        context.execution_options.preserve_order = False
        context.raise_original_map_exception = True  # an OP's own error type (exit codes), not a UserCodeException

    @property
    def parallel(self) -> int:
        return int(self.workers)

    def run(self, job: PassJob) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        """Each batch's stats as the whole batch has come back (in any order)."""
        if not job.todo:
            return
        blocks = [self._block(job, start) for start in job.todo]
        data = self.ray.data.from_arrow(blocks)
        specs, names = op_specs(job.ops), job.columns
        common: dict[str, Any] = {"batch_size": job.batch_size, "batch_format": "pyarrow", "zero_copy_batch": True}
        if any(op.max_batch for op in job.ops):  # model-backed: actors that keep their models loaded
            cluster = cluster_gpus(self.ray)
            gpus = 1 if cluster and any(op.wants_gpu() for op in job.ops) else 0
            size = min(self.workers, len(job.todo), *([cluster] if gpus else []))
            out = data.map_batches(_StatsActor, fn_constructor_args=(specs, names), num_cpus=1, num_gpus=gpus,
                                   compute=self.ray.data.ActorPoolStrategy(size=size),
                                   max_restarts=0, **common)  # a lost actor fails the pass; a re-run resumes it
        else:  # cheap OPs: plain tasks, no actor to start
            out = data.map_batches(_compute_block, fn_args=(specs, names), num_cpus=1,
                                   compute=self.ray.data.TaskPoolStrategy(size=min(self.workers, len(job.todo))),
                                   **common)
        try:
            yield from _regroup(out.iter_batches(batch_size=None, batch_format="pyarrow"), job)
        except self.ray.exceptions.RayTaskError as err:  # a user OP's failure: one line, as on the local engine
            if isinstance(err.cause, SandboxError):
                raise _without_retry_advice(err.cause) from None
            raise

    @staticmethod
    def _block(job: PassJob, start: int) -> pa.Table:
        part = job.table.slice(start, job.batch_size).select(job.columns)
        return part.append_column(ROW, pa.array(np.arange(start, start + len(part), dtype=np.int64)))

    def close(self, wait: bool = True) -> None:
        """Nothing to stop: the connection stays for the process's later passes and cells."""


#: What Ray Data appends to the message of a task's error (its retry count and advice).
_RETRY_ADVICE = re.compile(r"\nFailed to .* after \d+/\d+ attempts .*", re.DOTALL)


def _without_retry_advice(err: SandboxError) -> SandboxError:
    """The sandbox's own message, without Ray's advice to retry: an OP's bug is not transient."""
    if err.args and isinstance(err.args[0], str):
        err.args = (_RETRY_ADVICE.sub("", err.args[0]), *err.args[1:])
    return err


def _regroup(results: Iterator[pa.Table], job: PassJob) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """Results, whatever blocks they came back in, as complete batches of the grid."""
    total = job.table.num_rows
    pending: dict[int, list[pa.Table]] = {}
    for result in results:
        starts = result[ROW].to_numpy() // job.batch_size * job.batch_size
        for start in np.unique(starts):
            part = result.filter(pa.array(starts == start))
            parts = pending.setdefault(int(start), [])
            parts.append(part)
            if sum(p.num_rows for p in parts) == min(job.batch_size, total - int(start)):
                whole = pa.concat_tables(pending.pop(int(start))).sort_by(ROW)
                yield int(start), {k: whole[k].to_numpy(zero_copy_only=False) for k in whole.column_names
                                   if k != ROW}
    if pending:
        raise RuntimeError(f"Ray returned incomplete batches at rows {sorted(pending)}")
