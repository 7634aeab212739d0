"""The first step of every workflow: load the project's dataset and its (cached) stats."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from mlsandbox.data import Dataset, load_dataset
from mlsandbox.progress import StyleArg
from mlsandbox.project import check_project, project_ops
from mlsandbox.spec import ExperimentSpec
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


def prepare(spec: ExperimentSpec, workers: int | None = None, progress: StyleArg = True) -> Prepared:
    """Dataset + stats of every OP in the spec (computed only where the cache lacks them)."""
    check_project(spec, origin=spec.name)
    dataset = load_dataset(spec.dataset, spec.base_dir)
    log.info("dataset %s: %d samples, digest %s", dataset.source, len(dataset), dataset.digest)
    stats = compute_stats(
        dataset, project_ops(spec), spec.workspace_dir,
        workers=spec.stats.workers if workers is None else workers,
        batch_size=spec.stats.batch_size, progress=progress, engine=spec.stats.engine, address=spec.executor.address,
    )
    return Prepared(spec, dataset, stats)
