"""Logging to runs: batched params/metrics/tags, dataset inputs with explicit digests, artifacts."""

from __future__ import annotations

import logging
import os
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import pandas as pd
from mlflow.data.pandas_dataset import PandasDataset, from_pandas
from mlflow.entities import Metric, Param, RunTag
from mlflow.utils.time import get_current_time_millis

from mlsandbox.data import TEXT, Dataset
from mlsandbox.pools import Pool
from mlsandbox.stats import StatsTable

if TYPE_CHECKING:  # annotations only: the models package need not load with the tracking conventions
    from mlsandbox.models import BenchmarkSet

from mlsandbox.tracking._names import DATASET_DIGEST, KIND, MAX_PARAM, OP, POOL_DIGEST, SPLIT

log = logging.getLogger(__name__)


def checked_active_run(run_id: str | None) -> mlflow.ActiveRun:
    """The active run, checked to be ``run_id`` when one is named."""
    active = mlflow.active_run()
    if active is None:
        raise RuntimeError("no active MLflow run: start a parent run first")
    if run_id is not None and active.info.run_id != run_id:
        raise RuntimeError(f"run {run_id} is not the active MLflow run ({active.info.run_id})")
    return active


def metric_key(*parts: str) -> str:
    """A metric name from pool names: ``delta_pct.<op>.<split>``; characters MLflow rejects become ``_``."""
    name = ".".join(p.replace("/", ".").replace(" & ", "+") for p in parts)
    return re.sub(r"[^\w\-. :/]", "_", name)[:250]


def log_batch(
    run_id: str,
    params: Mapping[str, Any] | None = None,
    metrics: Mapping[str, float] | None = None,
    tags: Mapping[str, str] | None = None,
    step: int = 0,
) -> None:
    """Params, metrics and tags of a run in one request."""
    now = get_current_time_millis()
    mlflow.MlflowClient().log_batch(
        run_id,
        metrics=[Metric(k, float(v), now, step) for k, v in (metrics or {}).items()],
        params=[Param(k, _param_value(v)) for k, v in (params or {}).items()],
        tags=[RunTag(k, str(v)) for k, v in (tags or {}).items()],
    )


def _param_value(value: Any) -> str:
    text = str(value)
    return text if len(text) <= MAX_PARAM else text[: MAX_PARAM - 3] + "..."


def log_pool_input(
    pool: Pool, dataset: Dataset, stats: StatsTable, source: Path, context: str, run_id: str | None = None
) -> None:
    """Record the pool as an MLflow dataset input of the run (the active run), with its explicit digest.

    The logged frame holds each sample once with its repeat count and stats (the profile
    MLflow shows); the pool file is the source. MLflow's own pandas digest would hash only
    the first rows, so the pool digest is passed explicitly.
    """
    _log(_dataset(pool_frame(pool, dataset, stats), str(source), pool.name, pool.digest), context, run_id)


def log_source_input(dataset: Dataset, stats: StatsTable, run_id: str | None = None) -> None:
    """The source dataset as an input of the parent run (the active run; context ``source``)."""
    frame = stats.frame.copy()
    frame.insert(1, TEXT, dataset.table[TEXT].to_pandas())
    source: Any = dataset.uri
    if not dataset.files:  # a Hugging Face dataset by name
        from mlflow.data.huggingface_dataset_source import HuggingFaceDatasetSource

        source = HuggingFaceDatasetSource(path=dataset.source)
    _log(_dataset(frame, source, dataset.name, dataset.digest), "source", run_id)


# Every cell logs the same benchmark sets: build each MLflow dataset (schema, profile) once.
_BENCHMARK_DATASETS: dict[tuple[str, str, str], PandasDataset] = {}


def log_benchmark_inputs(benchmarks: BenchmarkSet, run_id: str | None = None) -> None:
    """Every benchmark of the set as an input of the run (the active run; context ``evaluation``)."""
    for bench in benchmarks.benchmarks:
        log_benchmark_input(bench.name, bench.texts, str(bench.path or bench.name), benchmarks.digests[bench.name],
                            run_id)


def log_benchmark_input(name: str, texts: list[str], source: str, digest: str, run_id: str | None = None) -> None:
    """A benchmark set as an input of the run (the active run; context ``evaluation``)."""
    key = (name, digest, source)
    if key not in _BENCHMARK_DATASETS:
        _BENCHMARK_DATASETS[key] = _dataset(pd.DataFrame({TEXT: texts}), source, name, digest)
    _log(_BENCHMARK_DATASETS[key], "evaluation", run_id)


def _dataset(frame: pd.DataFrame, source: Any, name: str, digest: str) -> PandasDataset:
    with warnings.catch_warnings():
        # Schema-inference hints about integer columns and source resolution are about model
        # signatures; a logged dataset has no missing values to encode.
        warnings.simplefilter("ignore", UserWarning)
        return from_pandas(frame, source=source, name=name, digest=digest)


def _log(dataset: PandasDataset, context: str, run_id: str | None) -> None:
    checked_active_run(run_id)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        # MLflow's public API builds a dataset input only in the fluent call, which logs to the
        # active run (the client's log_inputs takes entities made by private methods).
        mlflow.log_input(dataset, context=context)


def pool_frame(pool: Pool, dataset: Dataset, stats: StatsTable) -> pd.DataFrame:
    frame = stats.frame.iloc[pool.rows].reset_index(drop=True)
    frame.insert(1, TEXT, dataset.table[TEXT].take(pool.rows).to_pandas())
    frame.insert(2, "repeat", pool.repeats)
    return frame


def pool_tags(pool: Pool, kind: str = "pool") -> dict[str, str]:
    tags = {KIND: kind, POOL_DIGEST: pool.digest, DATASET_DIGEST: pool.dataset_digest, SPLIT: pool.origin.split}
    if pool.op is not None:
        tags[OP] = pool.op
    return tags


def download_artifacts(run_id: str, artifact_path: str | None, dst: Path) -> Path:
    """A run's artifacts (or one path of them) in ``dst``, without MLflow's per-file progress bar."""
    previous = os.environ.get(_PROGRESS_BAR)
    os.environ[_PROGRESS_BAR] = "false"
    try:
        return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact_path, dst_path=str(dst)))
    finally:
        if previous is None:
            os.environ.pop(_PROGRESS_BAR, None)
        else:
            os.environ[_PROGRESS_BAR] = previous


_PROGRESS_BAR = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"


def run_url(run: mlflow.ActiveRun) -> str:
    """Where to look: the UI address for a server, the store for a local database."""
    uri = mlflow.get_tracking_uri()
    info = run.info
    if uri.startswith("http"):
        return f"{uri.rstrip('/')}/#/experiments/{info.experiment_id}/runs/{info.run_id}"
    return f"run {info.run_id} in {uri} (view: mlflow ui --backend-store-uri {uri})"
