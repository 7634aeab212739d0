"""MLflow conventions: experiments, parent/child runs, dataset inputs, lineage tags, metric names.

Everything the sandbox writes to MLflow goes through here, so that the names a user filters on
in the UI (``tags.mlsandbox.op = 'stopwords_filter'``) are the same in every workflow.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.entities import Metric, Param, RunTag
from mlflow.utils.time import get_current_time_millis

from mlsandbox.data import TEXT, Dataset
from mlsandbox.pools import Pool
from mlsandbox.stats import StatsTable

TAG = "mlsandbox."
KIND = TAG + "kind"  # workflow | pool | cell | trial
DATASET_DIGEST = TAG + "dataset_digest"
POOL_DIGEST = TAG + "pool_digest"
OP = TAG + "op"
SPLIT = TAG + "split"
SEED = TAG + "seed"
PROJECT = TAG + "project"
ENTRY_POINT = TAG + "entry_point"

# MLflow caps a param value at 6000 characters; longer values (lists of OPs) are cut visibly.
_MAX_PARAM = 6000


def use_experiment(name: str) -> str | None:
    """The experiment of this sandbox project, unless ``mlflow run`` or the environment chose one.

    None means: let MLflow take ``MLFLOW_EXPERIMENT_ID`` / ``MLFLOW_EXPERIMENT_NAME``.
    """
    if os.environ.get("MLFLOW_RUN_ID"):
        return mlflow.get_run(os.environ["MLFLOW_RUN_ID"]).info.experiment_id
    if os.environ.get("MLFLOW_EXPERIMENT_ID") or os.environ.get("MLFLOW_EXPERIMENT_NAME"):
        return None
    return mlflow.set_experiment(name).experiment_id


@contextmanager
def parent_run(name: str, experiment_id: str | None, tags: Mapping[str, str]) -> Iterator[mlflow.ActiveRun]:
    """The run of one command; under ``mlflow run`` it is the project's own run."""
    with mlflow.start_run(run_name=name, experiment_id=experiment_id, tags=dict(tags)) as run:
        if os.environ.get("MLFLOW_RUN_ID"):
            mlflow.set_tags(dict(tags))  # start_run ignores tags when it resumes a run
        yield run


@contextmanager
def child_run(name: str, tags: Mapping[str, str]) -> Iterator[mlflow.ActiveRun]:
    """A run nested in the active parent run (``mlflow.parentRunId``)."""
    with mlflow.start_run(run_name=name, nested=True, tags=dict(tags)) as run:
        yield run


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
    return text if len(text) <= _MAX_PARAM else text[: _MAX_PARAM - 3] + "..."


def log_pool_input(
    pool: Pool, dataset: Dataset, stats: StatsTable, source: Path, context: str
) -> None:
    """Record the pool as an MLflow dataset input of the active run, with its explicit digest.

    The logged frame holds each sample once with its repeat count and stats (the profile
    MLflow shows); the pool file is the source. MLflow's own pandas digest would hash only
    the first rows, so the pool digest is passed explicitly.
    """
    _log_frame(pool_frame(pool, dataset, stats), str(source), pool.name, pool.digest, context)


def log_source_input(dataset: Dataset, stats: StatsTable) -> None:
    """The source dataset as an input of the parent run (context ``source``)."""
    frame = stats.frame.copy()
    frame.insert(1, TEXT, dataset.table[TEXT].to_pandas())
    source: Any = dataset.uri
    if not dataset.files:  # a Hugging Face dataset by name
        from mlflow.data.huggingface_dataset_source import HuggingFaceDatasetSource

        source = HuggingFaceDatasetSource(path=dataset.source)
    _log_frame(frame, source, dataset.name, dataset.digest, "source")


# Every cell logs the same benchmark sets: build each MLflow dataset (schema, profile) once.
_BENCHMARK_DATASETS: dict[tuple[str, str, str], Any] = {}


def log_benchmark_input(name: str, texts: list[str], source: str, digest: str) -> None:
    """A benchmark set as an input of the active run (context ``evaluation``)."""
    key = (name, digest, source)
    if key not in _BENCHMARK_DATASETS:
        _BENCHMARK_DATASETS[key] = _dataset(pd.DataFrame({TEXT: texts}), source, name, digest)
    _log(_BENCHMARK_DATASETS[key], "evaluation")


def _log_frame(frame: pd.DataFrame, source: Any, name: str, digest: str, context: str) -> None:
    _log(_dataset(frame, source, name, digest), context)


def _dataset(frame: pd.DataFrame, source: Any, name: str, digest: str) -> Any:
    with warnings.catch_warnings():
        # Schema-inference hints about integer columns and source resolution are about model
        # signatures; a logged dataset has no missing values to encode.
        warnings.simplefilter("ignore", UserWarning)
        return mlflow.data.from_pandas(frame, source=source, name=name, digest=digest)


def _log(dataset: Any, context: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
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
