"""Per-sample statistics: computed once per (dataset digest, OP, params), cached as Parquet.

The stats table is the hub of the sandbox: every pool, recipe and search trial is a selection
over it. Asking again reuses the cache; adding an OP computes only that OP. Computation runs
over batches in worker processes, all pending OPs of a batch sharing one tokenisation.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

import mlsandbox
from mlsandbox.data import ID, IMAGE, TEXT, Dataset
from mlsandbox.ops import ImageBatch, Op, TextBatch, create_op
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
    """Identity of an OP's stats: name, params and the package version that computed them."""
    payload = json.dumps({**op.identity(), "version": mlsandbox.__version__}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def cache_path(cache_dir: Path, dataset_digest: str, op: Op) -> Path:
    return cache_dir / "stats" / dataset_digest / f"{op.name}-{cache_key(op)}.parquet"


def compute_stats(
    dataset: Dataset,
    ops: Sequence[Op],
    cache_dir: Path,
    workers: int = 1,
    batch_size: int = 2000,
    progress: bool = True,
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
    for group in _passes(pending):
        log.info("computing %s over %d samples", ", ".join(o.name for o in group), len(dataset))
        size = min([batch_size] + [op.max_batch for op in group if op.max_batch])
        checkpoints = cache_dir / "stats" / dataset.digest / ".partial" / _pass_key(group, size)
        fresh = _compute(dataset, group, workers, size, progress, checkpoints)
        for op in group:
            values = {k: fresh[k] for k in op.stat_keys}
            _write_cached(cache_path(cache_dir, dataset.digest, op), ids, values)
            columns.update(values)
        shutil.rmtree(checkpoints, ignore_errors=True)
    frame = pd.DataFrame(columns)
    ordered = [ID] + [k for op in ops for k in op.stat_keys]
    return StatsTable(frame[ordered], dataset.digest, list(ops), [o.name for o in pending])


Columns = dict[str, list[Any]]


def _passes(pending: Sequence[Op]) -> list[list[Op]]:
    """Cheap OPs in one pass (sharing each batch's views); the model-backed image OPs in one pass
    (sharing each batch's decoded pixels); every other model-backed OP in a pass of its own, so
    its stats are cached as soon as it finishes."""
    cheap = [op for op in pending if not op.max_batch]
    pixels = [op for op in pending if op.max_batch and op.needs_images()]
    alone = [[op] for op in pending if op.max_batch and not op.needs_images()]
    return [group for group in (cheap, pixels) if group] + alone


def _pass_key(ops: Sequence[Op], batch_size: int) -> str:
    payload = json.dumps([[cache_key(op) for op in ops], batch_size])
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def _batches(table: pa.Table, starts: Sequence[int], batch_size: int, with_images: bool) -> Iterator[Columns]:
    """Slices of the columns the OPs read: texts, plus ids and images when an OP needs images."""
    names = [TEXT, ID, IMAGE] if with_images else [TEXT]
    for start in starts:
        part = table.slice(start, batch_size)
        yield {name: part[name].to_pylist() for name in names}


def _compute(
    dataset: Dataset, ops: Sequence[Op], workers: int, batch_size: int, progress: bool, checkpoints: Path
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
    name = ops[0].name if len(ops) == 1 else "stats"
    bar = tqdm(total=len(dataset), initial=len(dataset) - sum(min(batch_size, len(dataset) - s) for s in todo),
               desc=name, unit="sample" if dataset.has_images else "doc", disable=not progress, leave=False)
    batches = _batches(dataset.table, todo, batch_size, with_images=any(op.needs_images() for op in ops))
    workers = min(resolve_workers(workers), len(todo))
    if workers <= 1:
        outputs: Iterator[dict[str, np.ndarray]] = (_compute_batch(specs, batch) for batch in batches)
        pool = None
    else:
        # spawn: workers must not inherit a parent's threads (torch, tokenizers) or locks.
        pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_single_threaded)
        outputs = pool.map(_compute_batch, [specs] * len(todo), batches)
    try:
        for start, out in zip(todo, outputs):
            _write_checkpoint(checkpoints, start, out)
            results[start] = out
            bar.update(len(next(iter(out.values()))))
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        bar.close()
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


def _single_threaded() -> None:
    """One BLAS/torch thread per worker: N workers on N cores, never N x N threads."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"


def _compute_batch(specs: list[tuple[str, dict[str, Any]]], columns: Columns) -> dict[str, np.ndarray]:
    """One batch through every pending OP; OPs are built once per process (models load lazily)."""
    texts = columns[TEXT]
    batch = ImageBatch(texts, columns[IMAGE], columns[ID]) if IMAGE in columns else TextBatch(texts)
    out: dict[str, np.ndarray] = {}
    for name, params in specs:
        key = json.dumps([name, params], sort_keys=True)
        op = _WORKER_OPS.get(key) or _WORKER_OPS.setdefault(key, create_op(name, params))
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
