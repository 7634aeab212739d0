"""``compute_stats``: the cached stats of every OP, computing only what the cache lacks."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import shutil
from collections.abc import Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd

from mlsandbox.data import ID, Dataset
from mlsandbox.locks import exclusive
from mlsandbox.ops import Op
from mlsandbox.progress import Progress, StyleArg
from mlsandbox.stats._cache import (
    cache_path,
    read_cached,
    read_checkpoint,
    stats_folder,
    write_cached,
    write_checkpoint,
)
from mlsandbox.stats._local import LocalEngine
from mlsandbox.stats._passes import PassJob, pass_batch_size, pass_columns, pass_key, passes
from mlsandbox.stats._table import StatsTable

log = logging.getLogger("mlsandbox.stats")

EngineName = Literal["local", "ray"]


class Engine(Protocol):
    @property
    def parallel(self) -> int: ...  # batches computed at once

    def run(self, job: PassJob) -> Iterator[tuple[int, dict[str, np.ndarray]]]: ...

    def close(self, wait: bool = True) -> None: ...


def compute_stats(
    dataset: Dataset,
    ops: Sequence[Op],
    cache_dir: Path,
    workers: int = 1,
    batch_size: int = 2000,
    progress: StyleArg = True,
    engine: EngineName = "local",
    address: str | None = None,
) -> StatsTable:
    """Stats of every OP over the dataset, from the cache where present, else computed and cached.

    ``engine`` says where batches run: ``local`` (this machine's processes) or ``ray`` (the
    cluster at ``address``); both write the same cache, so either can resume the other's pass.
    """
    _refuse_in_a_starting_worker()
    ids = dataset.ids.to_numpy(zero_copy_only=False)
    columns: dict[str, Any] = {ID: ids}
    pending = _read_cached(dataset, ids, ops, cache_dir, columns)
    _check_media(dataset, pending)
    if pending:
        lock = cache_dir / "locks" / "stats" / f"{dataset.digest}.lock"
        with exclusive(lock, f"the stats of dataset {dataset.name!r}"):
            pending = _read_cached(dataset, ids, pending, cache_dir, columns)  # what the lock's holder computed
            if pending:
                _compute(dataset, ids, pending, cache_dir, columns, workers, batch_size, progress, engine, address)
    frame = pd.DataFrame(columns)
    ordered = [ID] + [k for op in ops for k in op.stat_keys]
    log.info("stats of %d OPs: %d computed, %d from the cache %s", len(ops), len(pending), len(ops) - len(pending),
             stats_folder(cache_dir, dataset.digest))
    return StatsTable(frame[ordered], dataset.digest, list(ops), [o.name for o in pending])


def _refuse_in_a_starting_worker() -> None:
    """A worker process started by ``spawn`` runs its parent's script again before it works; a script
    that computes stats outside ``if __name__ == "__main__":`` would then wait for good on the stats
    lock its parent holds. Raised there, the error ends the worker, whose parent then fails too.
    (``_inheriting`` is how ``multiprocessing`` itself tells that phase: it refuses to start a
    process in it.)"""
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise RuntimeError(
            "stats asked for while a stats worker process starts: the worker runs the script that started it "
            "again, and this script computes stats when imported. Put its code under "
            '`if __name__ == "__main__":`, or set `stats.workers: 1`')


def _read_cached(dataset: Dataset, ids: np.ndarray, ops: Sequence[Op], cache_dir: Path,
                 columns: dict[str, Any]) -> list[Op]:
    """Add the cached stats of ``ops`` to ``columns``; the OPs the cache lacks."""
    pending = []
    for op in ops:
        cached = read_cached(cache_path(cache_dir, dataset.digest, op), ids, op.stat_keys)
        if cached is None:
            pending.append(op)
        else:
            columns.update(cached)
    return pending


def _compute(dataset: Dataset, ids: np.ndarray, ops: list[Op], cache_dir: Path, columns: dict[str, Any],
             workers: int, batch_size: int, progress: StyleArg, engine: EngineName, address: str | None) -> None:
    runner = _engine(engine, workers, address)
    try:
        for group in passes(ops):
            columns.update(_compute_pass(dataset, ids, group, runner, cache_dir, batch_size, progress))
    except BrokenProcessPool as err:  # the worker's own error cannot reach this process, only its output can
        runner.close(wait=False)
        raise RuntimeError("a stats worker process ended before its batches were done: its error, if it "
                           "printed one, is above (one killed for lack of memory prints none)") from err
    except BaseException:
        runner.close(wait=False)  # stopped (SIGTERM, Ctrl-C, an error): its workers end at once
        raise
    runner.close()


def _engine(name: EngineName, workers: int, address: str | None) -> Engine:
    if name == "ray":
        from mlsandbox.stats._ray import RayEngine  # Ray is an optional extra

        return RayEngine(workers, address)
    return LocalEngine(workers)


def _check_media(dataset: Dataset, pending: Sequence[Op]) -> None:
    needs_images = [op.name for op in pending if op.needs_images()]
    if needs_images and not dataset.has_images:
        raise ValueError(f"OPs {', '.join(needs_images)} read images, but dataset {dataset.name!r} has none")
    needs_videos = [op.name for op in pending if op.needs_videos()]
    if needs_videos and not dataset.has_videos:
        raise ValueError(f"OPs {', '.join(needs_videos)} read videos, but dataset {dataset.name!r} has none")


def _compute_pass(dataset: Dataset, ids: np.ndarray, ops: list[Op], engine: Engine, cache_dir: Path,
                  batch_size: int, progress: StyleArg) -> dict[str, np.ndarray]:
    """One pass; each finished batch is checkpointed, so a killed pass resumes where it stopped."""
    size = pass_batch_size(len(dataset), batch_size, ops, int(dataset.text_bytes.sum()))
    log.info("computing %s over %d samples (batches of %d)", ", ".join(o.name for o in ops), len(dataset), size)
    checkpoints = stats_folder(cache_dir, dataset.digest) / ".partial" / pass_key(ops, size)
    keys = [k for op in ops for k in op.stat_keys]
    starts = range(0, len(dataset), size)
    results: dict[int, dict[str, np.ndarray]] = {}
    for start in starts:
        checkpointed = read_checkpoint(checkpoints, start, keys)
        if checkpointed is not None:
            results[start] = checkpointed
    todo = [start for start in starts if start not in results]
    name = "+".join(op.name for op in ops) if len(ops) <= 2 else "stats"
    bar = Progress(len(dataset), name, "sample" if dataset.has_images or dataset.has_videos else "doc", progress,
                   initial=len(dataset) - sum(min(size, len(dataset) - s) for s in todo),
                   parallel=min(engine.parallel, len(todo)))
    job = PassJob(dataset.table, ops, size, todo, pass_columns(dataset.table, ops))
    with bar:
        for start, out in engine.run(job):
            write_checkpoint(checkpoints, start, out)
            results[start] = out
            bar.advance(len(next(iter(out.values()))))
    fresh = {k: np.concatenate([results[start][k] for start in starts]) for k in keys}
    for op in ops:
        write_cached(cache_path(cache_dir, dataset.digest, op), ids, {k: fresh[k] for k in op.stat_keys})
    shutil.rmtree(checkpoints, ignore_errors=True)
    with contextlib.suppress(OSError):  # the last pass of the dataset: no empty folder left (another may be running)
        checkpoints.parent.rmdir()
    return fresh
