"""The first step of every workflow: load the project's dataset and its (cached) stats."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow

from mlsandbox import artifacts, tracking
from mlsandbox.cluster import check_reachable, connect
from mlsandbox.data import Dataset, load_dataset
from mlsandbox.models import BenchmarkSet, trainer_for
from mlsandbox.models.benchmarks import shared_samples_warning
from mlsandbox.pools import Pool, materialize
from mlsandbox.progress import StyleArg
from mlsandbox.project import check_project, project_ops
from mlsandbox.spec import ExperimentSpec, ModelSpec
from mlsandbox.stats import StatsTable, compute_stats

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    spec: ExperimentSpec
    dataset: Dataset
    stats: StatsTable

    @property
    def workspace(self) -> Path:
        return self.spec.workspace_dir

    @property
    def pools_dir(self) -> Path:
        """Pool files of this dataset: they carry its metadata columns, so those key them too."""
        return self.workspace / "pools" / self.dataset.digest / self.dataset.metadata_digest

    def pool_file(self, pool: Pool, model: ModelSpec) -> Path:
        """The pool's file as ``model``'s cells record it: whole samples for a trainer that reads it,
        else the samples' ids (:func:`~mlsandbox.pools.materialize`)."""
        return materialize(pool, self.dataset, self.pools_dir, records=trainer_for(model).reads_pool_file)


def prepare(spec: ExperimentSpec, workers: int | None = None, progress: StyleArg = True,
            check: Callable[[Dataset], None] | None = None) -> Prepared:
    """Dataset + stats of every OP in the spec (computed only where the cache lacks them); ``check``
    sees the dataset before its stats, so that what the caller refuses costs no stats pass."""
    check_project(spec, origin=spec.name)
    if spec.executor.type == "ray":
        connect(spec.executor.address)  # a cluster that cannot be reached stops it before any work
    elif spec.stats.engine == "ray":
        # the engine connects only for stats missing from the cache; a wrong address is refused either way
        check_reachable(spec.executor.address, "stats.engine ray")
    dataset = load_dataset(spec.dataset, spec.base_dir)
    log.info("dataset %s: %d samples, digest %s", dataset.source, len(dataset), dataset.digest)
    if check is not None:
        check(dataset)
    stats = compute_stats(
        dataset, project_ops(spec), spec.workspace_dir,
        workers=spec.stats.workers if workers is None else workers,
        batch_size=spec.stats.batch_size, progress=progress, engine=spec.stats.engine, address=spec.executor.address,
    )
    return Prepared(spec, dataset, stats)


def log_prepared(prepared: Prepared, benchmarks: BenchmarkSet, run_id: str, **params: Any) -> None:
    """What a command's parent run ran on: the source dataset as an input (context ``source``), the
    params that name its data, OPs, seeds, model and benchmarks (``params`` add to or override them),
    and the spec as used (``sandbox.yaml``), so the run can be read, and re-run, without its shell."""
    spec = prepared.spec
    overlap = benchmarks.samples_in(prepared.dataset)
    for name, count in overlap.items():
        if count:
            log.warning(shared_samples_warning(name, count))
    tracking.log_source_input(prepared.dataset, prepared.stats, run_id=run_id)
    tracking.log_batch(run_id, params={
        "dataset": prepared.dataset.source, "dataset_digest": prepared.dataset.digest,
        "ops": ",".join(o.name for o in spec.ops), "seeds": spec.seeds, "model_type": spec.model.type,
        "benchmarks": ",".join(benchmarks.names), "documents": len(prepared.stats), **params},
        metrics={"rows_skipped": prepared.dataset.skipped,  # malformed rows dropped under dataset.on_error: skip
                 **{f"benchmark_in_dataset.{n}": c for n, c in overlap.items()}})
    mlflow.MlflowClient().log_text(run_id, spec.shown_yaml(),
                                   artifacts.SPEC)
