"""Per-sample statistics: computed once per (dataset digest, OP, params), cached as Parquet.

The stats table is the hub of the sandbox: every pool, recipe and search trial is a selection
over it. Asking again reuses the cache; adding an OP computes only that OP. Computation runs
over batches in worker processes, all pending OPs of a batch sharing one tokenisation.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from logging.handlers import QueueHandler, QueueListener
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

import mlsandbox
from mlsandbox.data import ID, IMAGE, TEXT, VIDEO, Dataset
from mlsandbox.ops import ImageBatch, Op, TextBatch, VideoBatch, create_op, frame_samplings
from mlsandbox.progress import Progress, StyleArg
from mlsandbox.runtime import resolve_workers

log = logging.getLogger(__name__)

PERCENTILES = (1, 5, 10, 25, 50, 75, 90, 95, 99)


@dataclass
class StatsTable:
    """Stats of one dataset: a frame with ``id`` then one column per stat key, in dataset order."""

    frame: pd.DataFrame
    dataset_digest: str
    ops: list[Op]
    computed: list[str]  # OP names computed now (the rest came from the cache)

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def ids(self) -> np.ndarray:
        return self.frame[ID].to_numpy()

    def stat(self, key: str) -> np.ndarray:
        if key not in self.frame.columns:
            known = ", ".join(c for c in self.frame.columns if c != ID)
            raise KeyError(f"no stat {key!r} in the stats table (stats: {known})")
        return self.frame[key].to_numpy()

    def op(self, name: str) -> Op:
        for op in self.ops:
            if op.name == name:
                return op
        raise KeyError(f"OP {name!r} is not in this stats table (OPs: {', '.join(o.name for o in self.ops)})")

    def numeric_keys(self) -> list[str]:
        return [c for c in self.frame.columns if c != ID and pd.api.types.is_numeric_dtype(self.frame[c])]


def cache_key(op: Op) -> str:
    """Identity of an OP's stats: name, params, the OP's ``version`` and the package version.

    An OP bumps its class attribute ``version`` whenever a change alters the values it computes,
    so stats of an older definition are never served for the new one. Version 1 (every OP that
    declares none) keeps the key it had before versions existed, so those caches stay valid.
    """
    identity = op.identity()
    version = op_version(op)
    if version != 1:
        identity["op_version"] = version
    payload = json.dumps({**identity, "version": mlsandbox.__version__}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def op_version(op: Op) -> int:
    """The version of the OP's definition (its class attribute ``version``; 1 when it has none)."""
    version = getattr(type(op), "version", 1)
    return version if isinstance(version, int) else 1


def cache_path(cache_dir: Path, dataset_digest: str, op: Op) -> Path:
    return cache_dir / "stats" / dataset_digest / f"{op.name}-{cache_key(op)}.parquet"


def compute_stats(
    dataset: Dataset,
    ops: Sequence[Op],
    cache_dir: Path,
    workers: int = 1,
    batch_size: int = 2000,
    progress: StyleArg = True,
) -> StatsTable:
    """Stats of every OP over the dataset, from the cache where present, else computed and cached."""
    ids = dataset.ids.to_numpy(zero_copy_only=False)
    columns: dict[str, Any] = {ID: ids}
    pending = []
    for op in ops:
        cached = _read_cached(cache_path(cache_dir, dataset.digest, op), ids)
        if cached is None:
            pending.append(op)
        else:
            columns.update(cached)
    needs_images = [op.name for op in pending if op.needs_images()]
    if needs_images and not dataset.has_images:
        raise ValueError(f"OPs {', '.join(needs_images)} read images, but dataset {dataset.name!r} has none")
    needs_videos = [op.name for op in pending if op.needs_videos()]
    if needs_videos and not dataset.has_videos:
        raise ValueError(f"OPs {', '.join(needs_videos)} read videos, but dataset {dataset.name!r} has none")
    with _Workers(workers) as pool:
        for group in _passes(pending):
            size = pass_batch_size(len(dataset), batch_size, group)
            log.info("computing %s over %d samples (batches of %d)", ", ".join(o.name for o in group), len(dataset), size)
            checkpoints = cache_dir / "stats" / dataset.digest / ".partial" / _pass_key(group, size)
            fresh = _compute(dataset, group, pool, size, progress, checkpoints)
            for op in group:
                values = {k: fresh[k] for k in op.stat_keys}
                _write_cached(cache_path(cache_dir, dataset.digest, op), ids, values)
                columns.update(values)
            shutil.rmtree(checkpoints, ignore_errors=True)
    frame = pd.DataFrame(columns)
    ordered = [ID] + [k for op in ops for k in op.stat_keys]
    return StatsTable(frame[ordered], dataset.digest, list(ops), [o.name for o in pending])


Columns = dict[str, list[Any]]

#: A model pass advances its progress (and checkpoints) at least this many times ...
MODEL_PASS_STEPS = 50
#: ... unless that makes batches smaller than this (model OPs batch and sort by length inside).
MIN_MODEL_BATCH = 32


def pass_batch_size(samples: int, batch_size: int, ops: Sequence[Op]) -> int:
    """Samples per batch of a pass: ``batch_size``, capped by the OPs' ``max_batch``; a model
    pass also keeps batches small enough to report progress every 2% or so of the dataset."""
    caps = [op.max_batch for op in ops if op.max_batch]
    if not caps:
        return batch_size
    return max(1, min([batch_size, *caps, max(MIN_MODEL_BATCH, math.ceil(samples / MODEL_PASS_STEPS))]))


def _passes(pending: Sequence[Op]) -> list[list[Op]]:
    """Cheap OPs in one pass (sharing each batch's views); the model-backed image OPs in one pass
    (sharing each batch's decoded pixels); model-backed text OPs that read the same per-batch
    result (one spaCy parse: their ``shared_pass`` key) in one pass; every other model-backed
    OP in a pass of its own, so its stats are cached as soon as it finishes."""
    cheap = [op for op in pending if not op.max_batch]
    pixels = [op for op in pending if op.max_batch and _needs_media(op)]
    models: dict[str, list[Op]] = {}
    for op in pending:
        if op.max_batch and not _needs_media(op):
            models.setdefault(shared_pass(op) or f"{op.name}:{cache_key(op)}", []).append(op)
    return [group for group in (cheap, pixels) if group] + list(models.values())


def _needs_media(op: Op) -> bool:
    return op.needs_images() or op.needs_videos()


def shared_pass(op: Op) -> str | None:
    """The key of the per-batch work the OP shares with other OPs of a pass (its attribute
    ``shared_pass``, e.g. the spaCy pipeline whose parse it reads), or None."""
    key = getattr(op, "shared_pass", None)
    return key if isinstance(key, str) else None


def _pass_key(ops: Sequence[Op], batch_size: int) -> str:
    payload = json.dumps([[cache_key(op) for op in ops], batch_size])
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def _batches(table: pa.Table, starts: Sequence[int], batch_size: int, with_media: bool) -> Iterator[Columns]:
    """Slices of the columns the OPs read: texts, plus ids and images or videos when an OP needs them."""
    names = [TEXT, ID, *(c for c in (IMAGE, VIDEO) if c in table.column_names)] if with_media else [TEXT]
    for start in starts:
        part = table.slice(start, batch_size)
        yield {name: part[name].to_pylist() for name in names}


class _Workers:
    """Worker processes for every pass of one ``compute_stats`` call, started on first use.

    One pool serves all passes, so each worker imports its libraries once. Workers log through
    a queue to this process's handlers: a model's loading line shows in ``--quiet`` logs too.
    """

    def __init__(self, workers: int) -> None:
        self.count = resolve_workers(workers)
        self._pool: ProcessPoolExecutor | None = None
        self._listener: QueueListener | None = None

    def pool(self, batches: int) -> ProcessPoolExecutor | None:
        """The pool, or None where one process is enough (one worker asked, or one batch)."""
        if self.count <= 1 or batches <= 1:
            return None
        if self._pool is None:
            context = get_context("spawn")  # workers must not inherit a parent's threads (torch, tokenizers) or locks
            queue = context.Queue()
            self._listener = QueueListener(queue, _Relay())
            self._listener.start()
            self._pool = ProcessPoolExecutor(self.count, mp_context=context, initializer=_init_worker,
                                             initargs=(queue, logging.getLogger().getEffectiveLevel()))
        return self._pool

    def __enter__(self) -> _Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
        if self._listener is not None:
            self._listener.stop()


class _Relay(logging.Handler):
    """Hands a worker's log record to the logger of the same name here (its level and handlers)."""

    def emit(self, record: logging.LogRecord) -> None:
        logger = logging.getLogger(record.name)
        if logger.isEnabledFor(record.levelno):
            logger.handle(record)


def _compute(
    dataset: Dataset, ops: Sequence[Op], workers: _Workers, batch_size: int, progress: StyleArg, checkpoints: Path
) -> dict[str, np.ndarray]:
    """Every batch's stats; each finished batch is checkpointed, so a killed pass resumes."""
    specs = [(op.name, op.params.model_dump()) for op in ops]
    keys = [k for op in ops for k in op.stat_keys]
    starts = range(0, len(dataset), batch_size)
    results: dict[int, dict[str, np.ndarray]] = {}
    for start in starts:
        checkpointed = _read_checkpoint(checkpoints, start, keys)
        if checkpointed is not None:
            results[start] = checkpointed
    todo = [start for start in starts if start not in results]
    name = "+".join(op.name for op in ops) if len(ops) <= 2 else "stats"
    bar = Progress(len(dataset), name, "sample" if dataset.has_images or dataset.has_videos else "doc", progress,
                   initial=len(dataset) - sum(min(batch_size, len(dataset) - s) for s in todo))
    batches = _batches(dataset.table, todo, batch_size, with_media=any(_needs_media(op) for op in ops))
    pool = workers.pool(len(todo))
    outputs: Iterator[dict[str, np.ndarray]] = (
        (_compute_batch(specs, batch) for batch in batches) if pool is None
        else pool.map(_compute_batch, [specs] * len(todo), batches)
    )
    with bar:  # an error leaves the pool to _Workers, which cancels the batches not started
        for start, out in zip(todo, outputs):
            _write_checkpoint(checkpoints, start, out)
            results[start] = out
            bar.advance(len(next(iter(out.values()))))
    return {k: np.concatenate([results[start][k] for start in starts]) for k in keys}


def _read_checkpoint(directory: Path, start: int, keys: list[str]) -> dict[str, np.ndarray] | None:
    path = directory / f"{start:012d}.parquet"
    if not path.exists():
        return None
    try:
        table = pq.read_table(path)
        return {k: table[k].to_numpy(zero_copy_only=False) for k in keys}
    except (pa.ArrowInvalid, OSError, KeyError):
        return None


def _write_checkpoint(directory: Path, start: int, values: dict[str, np.ndarray]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f"{start:012d}.tmp{os.getpid()}"
    pq.write_table(pa.table(values), tmp)
    os.replace(tmp, directory / f"{start:012d}.parquet")


_WORKER_OPS: dict[str, Op] = {}


def _init_worker(queue: Any, level: int) -> None:
    """One BLAS/torch thread per worker (N workers on N cores, never N x N threads); log records
    go to the parent, which shows them with its own handlers."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"
    root = logging.getLogger()
    root.handlers = [QueueHandler(queue)]
    root.setLevel(level)


def _compute_batch(specs: list[tuple[str, dict[str, Any]]], columns: Columns) -> dict[str, np.ndarray]:
    """One batch through every pending OP; OPs are built once per process (models load lazily)."""
    texts = columns[TEXT]
    ops = [_WORKER_OPS.get(key) or _WORKER_OPS.setdefault(key, create_op(name, params))
           for name, params in specs for key in [json.dumps([name, params], sort_keys=True)]]
    batch: TextBatch
    if VIDEO in columns:  # the frame OPs' samplings, decoded once per video for all of them
        batch = VideoBatch(texts, columns[VIDEO], columns[ID], samplings=frame_samplings(ops))
    elif IMAGE in columns:
        batch = ImageBatch(texts, columns[IMAGE], columns[ID])
    else:
        batch = TextBatch(texts)
    out: dict[str, np.ndarray] = {}
    for (name, _), op in zip(specs, ops):
        values = op.compute(batch)
        for stat, arr in values.items():
            if len(arr) != len(texts):
                raise RuntimeError(f"OP {name!r} returned {len(arr)} values of {stat!r} for {len(texts)} samples")
        out.update(values)
    return out


def _read_cached(path: Path, ids: np.ndarray) -> dict[str, np.ndarray] | None:
    if not path.exists():
        return None
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError):
        log.warning("ignoring unreadable stats cache %s", path)
        return None
    cached_ids = table[ID].to_numpy(zero_copy_only=False)
    if len(cached_ids) != len(ids) or not np.array_equal(cached_ids, ids):
        log.warning("ignoring stats cache %s: its ids differ from the dataset's", path)
        return None
    return {c: table[c].to_numpy(zero_copy_only=False) for c in table.column_names if c != ID}


def _write_cached(path: Path, ids: np.ndarray, values: dict[str, np.ndarray]) -> None:
    """Write-then-rename: a killed run never leaves a half-written cache file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    pq.write_table(pa.table({ID: ids, **values}), tmp)
    os.replace(tmp, path)


def summarize(stats: StatsTable) -> pd.DataFrame:
    """Per-stat summary (count, mean, std, min, percentiles, max): Data-Juicer's DataAnalyzer view."""
    rows = {}
    for key in stats.numeric_keys():
        values = stats.frame[key].astype(float)
        row = {"count": int(values.count()), "mean": values.mean(), "std": values.std(ddof=0),
               "min": values.min()}
        row.update({f"p{p}": v for p, v in zip(PERCENTILES, np.percentile(values, PERCENTILES))})
        row["max"] = values.max()
        rows[key] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def categorical_summary(stats: StatsTable, top: int = 10) -> dict[str, dict[str, int]]:
    """Most frequent values of non-numeric stats (e.g. ``lang``)."""
    keys = [c for c in stats.frame.columns if c != ID and c not in stats.numeric_keys()]
    return {k: stats.frame[k].value_counts().head(top).to_dict() for k in keys}
