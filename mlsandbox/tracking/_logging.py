"""Logging to runs: batched params/metrics/tags, dataset inputs with explicit digests, artifacts."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import posixpath
import shlex
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.data.pandas_dataset import PandasDataset, from_pandas
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.utils.time import get_current_time_millis
from mlflow.utils.validation import MAX_ENTITY_KEY_LENGTH  # the longest metric name MLflow stores

from mlsandbox.credentials import scrub_known
from mlsandbox.data import TEXT, Dataset
from mlsandbox.errors import first_line
from mlsandbox.pools import Pool, recipe_digest
from mlsandbox.retry import retry_lost_race
from mlsandbox.spec import metric_name_part
from mlsandbox.stats import StatsTable

if TYPE_CHECKING:  # annotations only: the models package need not load with the tracking conventions
    from mlsandbox.models import BenchmarkSet

from mlsandbox.files import scratch_folder
from mlsandbox.tracking._names import DATASET_DIGEST, KIND, MAX_PARAM, OP, POOL_DIGEST, RECIPE_DIGEST, SPLIT
from mlsandbox.tracking._store import shown_tracking_uri

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
    """A metric name from pool names: ``delta_pct.<op>.<split>``, an intersection's pools joined by
    `` and `` (MLflow takes no ``&`` or ``+``, and ``_`` would read as part of an OP's name);
    other characters MLflow rejects become ``_``. A name over MLflow's limit is cut and ends with
    a digest of the whole, so two long pool names that start alike keep two metrics."""
    name = metric_name_part(".".join(p.replace("/", ".") for p in parts))
    if len(name) <= MAX_ENTITY_KEY_LENGTH:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:12]
    return f"{name[:MAX_ENTITY_KEY_LENGTH - len(digest) - 1]}-{digest}"


def log_batch(
    run_id: str,
    params: Mapping[str, Any] | None = None,
    metrics: Mapping[str, float] | None = None,
    tags: Mapping[str, str] | None = None,
    step: int = 0,
    series: Mapping[str, Mapping[int, float]] | None = None,
) -> None:
    """Params, metrics (at ``step``; ``series``: a metric at several steps) and tags of a run in one
    request; no secret in a value (:func:`scrub_known`)."""
    now = get_current_time_millis()
    mlflow.MlflowClient().log_batch(
        run_id,
        metrics=[*(Metric(k, float(v), now, step) for k, v in (metrics or {}).items()),
                 *(Metric(k, float(v), now, s) for k, steps in (series or {}).items() for s, v in steps.items())],
        params=[Param(k, _param_value(v)) for k, v in (params or {}).items()],
        tags=[RunTag(k, scrub_known(str(v))) for k, v in (tags or {}).items()],
    )


def _param_value(value: Any) -> str:
    text = scrub_known(str(value))
    return text if len(text) <= MAX_PARAM else text[: MAX_PARAM - 3] + "..."


def log_table(run_id: str, table: pd.DataFrame, artifact_file: str) -> None:
    """MLflow's ``log_table``, except that a table logged again to a run replaces the earlier one
    instead of being appended to it (a study's run is logged to by every worker and every resume,
    and each of them logs the whole table), and that numbers keep their full precision. MLflow
    registers the table (for its UI) the first time."""
    client = mlflow.MlflowClient()
    folder = posixpath.dirname(artifact_file) or None
    if artifact_file not in {f.path for f in _run_repository(run_id).list_artifacts(folder)}:
        client.log_table(run_id, table, artifact_file)
    with scratch_folder("artifacts") as tmp:
        local = Path(tmp) / posixpath.basename(artifact_file)
        local.write_text(table_json(table))
        client.log_artifact(run_id, str(local), folder)


def table_json(table: pd.DataFrame) -> str:
    """The table as MLflow writes one (pandas' ``split`` orientation), floats exact: pandas rounds
    them to 10 decimal places, which would log a p-value of 1e-12 as 0."""
    payload = json.loads(table.to_json(orient="split", index=False, date_format="iso"))
    for j, column in enumerate(table.columns):
        if pd.api.types.is_float_dtype(table[column]):
            for row, value in zip(payload["data"], table[column].tolist()):
                row[j] = value if math.isfinite(value) else None
    return json.dumps(payload)


def log_pool_input(
    pool: Pool, dataset: Dataset, stats: StatsTable, source: Path, context: str, run_id: str | None = None,
    benchmarks: BenchmarkSet | None = None, name: str | None = None, digest: str | None = None,
) -> None:
    """Record the pool as an MLflow dataset input of the run (the active run), with its explicit digest
    (or ``name`` and ``digest`` of its own, for a file of the pool that is not the pool's file);
    with ``benchmarks``, their sets too (context ``evaluation``), in the same request.

    The logged frame holds each sample once with its repeat count and stats (the profile
    MLflow shows); the pool file is the source. MLflow's own pandas digest would hash only
    the first rows, so the pool digest is passed explicitly.
    """
    logged = _dataset(pool_frame(pool, dataset, stats), str(source), name or pool.name, digest or pool.digest)
    # ``schema`` is a cached property that MLflow would infer by reading every value of the pool;
    # the whole dataset's schema, inferred once, is that of each of its pools.
    logged.__dict__["schema"] = _pool_schema(dataset, stats)
    _log([(logged, context), *(_benchmark_inputs(benchmarks) if benchmarks else [])], run_id)


# Every pool of a dataset has the same columns: infer their schema once per dataset and stats.
_POOL_SCHEMAS: dict[tuple[str, tuple[str, ...]], Any] = {}


def _pool_schema(dataset: Dataset, stats: StatsTable) -> Any:
    """The schema of the dataset's pool frames, as on the frame of every row (a column that is
    missing in some row is optional for every pool)."""
    key = (dataset.digest, tuple(stats.frame.columns))
    if key not in _POOL_SCHEMAS:
        rows = _schema_rows(stats.frame)  # a text is never missing (the dataset's load checks)
        _POOL_SCHEMAS[key] = _schema(_frame(rows, np.ones(len(rows), dtype=np.int64), dataset, stats))
    return _POOL_SCHEMAS[key]


def _schema(frame: pd.DataFrame) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # see _dataset
        return _dataset(frame, "", "", "").schema


def _schema_rows(frame: pd.DataFrame, head: int = 1000) -> np.ndarray:
    """Rows enough to infer the MLflow schema of ``frame``: the first ``head``, and for each column
    that misses a value somewhere, a row where it does, so the column is optional as on the whole.
    MLflow would read every value of a million-row corpus, twice a command."""
    missing = frame.isna()
    rows = set(range(min(head, len(frame))))
    rows.update(int(np.argmax(missing[c].to_numpy())) for c in missing.columns if missing[c].any())
    return np.array(sorted(rows), dtype=np.int64)


def log_source_input(dataset: Dataset, stats: StatsTable, run_id: str | None = None) -> None:
    """The source dataset as an input of the parent run (the active run; context ``source``)."""
    frame = stats.frame.copy()
    frame.insert(1, TEXT, dataset.table[TEXT].to_pandas())
    source: Any = dataset.uri
    if not dataset.files:  # a Hugging Face dataset by name
        from mlflow.data.huggingface_dataset_source import HuggingFaceDatasetSource

        source = HuggingFaceDatasetSource(path=dataset.source)
    logged = _dataset(frame, source, dataset.name, dataset.digest)
    logged.__dict__["schema"] = _schema(frame.iloc[_schema_rows(frame)])  # see _schema_rows
    _log([(logged, "source")], run_id)


# Every cell logs the same benchmark sets: build each MLflow dataset (schema, profile) once.
_BENCHMARK_DATASETS: dict[tuple[str, str, str], PandasDataset] = {}


def log_benchmark_inputs(benchmarks: BenchmarkSet, run_id: str | None = None) -> None:
    """Every benchmark of the set as an input of the run (the active run; context ``evaluation``)."""
    _log(_benchmark_inputs(benchmarks), run_id)


def _benchmark_inputs(benchmarks: BenchmarkSet) -> list[tuple[PandasDataset, str]]:
    inputs = []
    for bench in benchmarks.benchmarks:
        key = (bench.name, benchmarks.digests[bench.name], str(bench.path or bench.name))
        if key not in _BENCHMARK_DATASETS:
            _BENCHMARK_DATASETS[key] = _dataset(pd.DataFrame({TEXT: bench.texts}), key[2], key[0], key[1])
        inputs.append((_BENCHMARK_DATASETS[key], "evaluation"))
    return inputs


def _dataset(frame: pd.DataFrame, source: Any, name: str, digest: str) -> PandasDataset:
    with warnings.catch_warnings():
        # Schema-inference hints about integer columns and source resolution are about model
        # signatures; a logged dataset has no missing values to encode.
        warnings.simplefilter("ignore", UserWarning)
        return from_pandas(frame, source=source, name=name, digest=digest)


def _log(inputs: list[tuple[PandasDataset, str]], run_id: str | None) -> None:
    """(dataset, context) pairs as inputs of the run, in one request.

    MLflow looks a dataset up before inserting it, so two processes logging the same new dataset
    at once (the workers of one study, on a shared database) can both insert it and the later
    one fails on the unique key; the request is one transaction, so it is simply sent again and
    then finds the other's row.
    """
    checked_active_run(run_id)

    def log_inputs() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            # MLflow's public API builds dataset inputs only in the fluent call, which logs to the
            # active run (the client's log_inputs takes entities made by private methods).
            mlflow.log_inputs(datasets=[d for d, _ in inputs], contexts=[c for _, c in inputs],
                              tags_list=[None] * len(inputs))

    retry_lost_race(log_inputs, _lost_insert_race, "logging dataset inputs", wait_s=0.1)


def _lost_insert_race(err: Exception) -> bool:
    """Whether ``err`` is a unique-key violation, from the database itself or from a tracking server."""
    from sqlalchemy.exc import IntegrityError

    text = str(err).lower()
    return isinstance(err, MlflowException) and (isinstance(err.__cause__, IntegrityError) or (
        err.error_code == "BAD_REQUEST" and ("unique" in text or "duplicate" in text)))


def pool_frame(pool: Pool, dataset: Dataset, stats: StatsTable) -> pd.DataFrame:
    """Each sample of the pool once: id, text, repeat count and stats."""
    return _frame(pool.rows, pool.repeats, dataset, stats)


def _frame(rows: np.ndarray, repeats: np.ndarray, dataset: Dataset, stats: StatsTable) -> pd.DataFrame:
    frame = stats.frame.iloc[rows].reset_index(drop=True)
    frame.insert(1, TEXT, dataset.table[TEXT].take(rows).to_pandas())
    frame.insert(2, "repeat", repeats)
    return frame


def pool_tags(pool: Pool, kind: str = "pool") -> dict[str, str]:
    """Lineage tags: the pool, its source dataset, its split, and its OP and recipe where it has one."""
    tags = {KIND: kind, POOL_DIGEST: pool.digest, DATASET_DIGEST: pool.dataset_digest, SPLIT: pool.origin.split}
    if pool.op is not None:
        tags[OP] = pool.op
    if digest := recipe_digest(pool.origin):
        tags[RECIPE_DIGEST] = digest
    return tags


def remove_artifacts(run_id: str, folder: str, keep: frozenset[str] = frozenset()) -> None:
    """Remove what the run's artifact ``folder`` holds, but the entries named in ``keep``: before a
    folder is logged again, whose earlier files would otherwise stay beside the new ones even where
    they no longer hold (an export that now fails, a result of a trial that is no longer the best)."""
    repository = _run_repository(run_id)
    earlier = [f.path for f in repository.list_artifacts(folder) if f.path not in keep]
    if earlier and not keep:
        earlier = [folder]  # the folder itself: an empty one would stay in the run's artifacts
    for path in earlier:
        try:
            repository.delete_artifacts(path)
        except (NotImplementedError, MlflowException, OSError) as err:  # a store that cannot delete
            log.warning("run %s: the earlier artifact %s could not be removed (%s) and may be out of date",
                        run_id, path, first_line(err))


def log_artifacts(run: mlflow.entities.RunInfo, local_dir: Path, artifact_path: str) -> None:
    """MLflow's ``log_artifacts`` for a run whose info is at hand (a run just started): its artifact
    location is known, so the store is not asked for the run again, as the client would."""
    _repository(run.artifact_uri).log_artifacts(str(local_dir), artifact_path)


#: The artifact location of each run whose artifacts were listed: it never changes, and a step's
#: run, with hundreds of metrics, takes tens of milliseconds to fetch (MLflow's client fetches it
#: on every listing).
_ARTIFACT_URIS: dict[str, str] = {}


def _run_repository(run_id: str) -> Any:
    if run_id not in _ARTIFACT_URIS:
        _ARTIFACT_URIS[run_id] = mlflow.MlflowClient().get_run(run_id).info.artifact_uri
    return _repository(_ARTIFACT_URIS[run_id])


def _repository(artifact_uri: str) -> Any:
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    return get_artifact_repository(artifact_uri, tracking_uri=mlflow.get_tracking_uri())


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
    uri = shown_tracking_uri()
    info = run.info
    if uri.startswith("http"):
        return f"{uri.rstrip('/')}/#/experiments/{info.experiment_id}/runs/{info.run_id}"
    return f"run {info.run_id} in {uri} (view: mlflow ui --backend-store-uri {shlex.quote(uri)})"  # to paste as is
