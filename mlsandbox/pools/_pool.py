"""The pool itself, the random control, bounds, and the rows written out once for a trainer."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from mlsandbox.data import ID, IMAGE, VIDEO, Dataset
from mlsandbox.errors import PoolError
from mlsandbox.files import published
from mlsandbox.images import image_suffix
from mlsandbox.pools._origins import RANDOM, BoundsOrigin, PoolOrigin, RandomOrigin, RepeatOrigin, SplitOrigin
from mlsandbox.stats import StatsTable


@dataclass(frozen=True)
class Pool:
    """Sorted unique ``rows`` of the stats table with a ``repeats`` count each, and its origin."""

    name: str
    dataset_digest: str
    rows: np.ndarray
    repeats: np.ndarray
    origin: PoolOrigin

    @property
    def op(self) -> str | None:
        """The OP of a single-OP split pool (also when repeated), else None."""
        base = self.origin.base if isinstance(self.origin, RepeatOrigin) else self.origin
        return base.op if isinstance(base, SplitOrigin) else None

    @property
    def size(self) -> int:
        """Samples a trainer sees, repeats included."""
        return int(self.repeats.sum())

    @property
    def unique_size(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:  # not the row and repeat arrays: thousands of numbers
        return (f"Pool(name={self.name!r}, size={self.size}, unique_size={self.unique_size}, "
                f"digest={self.digest!r}, origin={self.origin!r})")

    @cached_property
    def digest(self) -> str:
        h = hashlib.sha256(self.dataset_digest.encode())
        h.update(np.ascontiguousarray(self.rows, dtype=np.int64).tobytes())
        h.update(np.ascontiguousarray(self.repeats, dtype=np.int64).tobytes())
        return h.hexdigest()[:16]

    def repeated(self, times: int, name: str | None = None) -> Pool:
        """The same samples, each ``times`` times as often (the duplication study)."""
        if times < 1:
            raise PoolError(f"repeat count must be >= 1, got {times}")
        return Pool(name or f"{self.name}x{times}", self.dataset_digest, self.rows, self.repeats * times,
                    RepeatOrigin(self.origin, times))

    def ids(self, stats: StatsTable) -> np.ndarray:
        return stats.ids[self.rows]

    def training_order(self, seed: int) -> np.ndarray:
        """Rows with repeats expanded, shuffled by ``seed``: the order a trainer reads them."""
        expanded = np.repeat(self.rows, self.repeats)
        return np.random.default_rng(seed).permutation(expanded)


def make_pool(name: str, stats: StatsTable, rows: np.ndarray, origin: PoolOrigin) -> Pool:
    """A pool of the given rows (each once); duplicates are dropped, order does not matter."""
    mask = np.zeros(len(stats), dtype=bool)
    mask[np.asarray(rows, dtype=np.int64)] = True  # O(n) sort + dedupe of row positions
    rows = np.flatnonzero(mask)
    if len(rows) == 0:
        raise PoolError(f"pool {name!r} is empty: no sample passes its selection")
    return Pool(name, stats.dataset_digest, rows, np.ones(len(rows), dtype=np.int64), origin)


def random_pool(stats: StatsTable, size: int, seed: int, name: str = RANDOM) -> Pool:
    """The control group: ``size`` samples drawn uniformly without replacement, seeded.

    A budget beyond the dataset (a repeated pool of the duplication study) repeats every sample
    ``size // n`` times and a seeded ``size % n`` of them once more: uniform repetition.
    """
    n = len(stats)
    if size < 1:
        raise PoolError(f"a random pool needs at least 1 sample, got {size}")
    times, extra = divmod(size, n)
    repeats = np.full(n, times, dtype=np.int64)
    repeats[np.random.default_rng(seed).choice(n, extra, replace=False)] += 1
    rows = np.flatnonzero(repeats)
    return Pool(name, stats.dataset_digest, rows, repeats[rows], RandomOrigin(seed))


def filter_pool(
    stats: StatsTable, bounds: dict[str, tuple[float | None, float | None]], name: str
) -> Pool:
    """Samples whose every stat lies in its ``[min, max]`` (inclusive; None = unbounded)."""
    mask = np.ones(len(stats), dtype=bool)
    for key, (lo, hi) in bounds.items():
        if lo is not None and hi is not None and lo > hi:
            raise PoolError(f"{name}: {key} min {lo} is above max {hi}")
        values = stats.stat(key)
        if lo is not None:
            mask &= values >= lo
        if hi is not None:
            mask &= values <= hi
    origin = BoundsOrigin(tuple((k, lo, hi) for k, (lo, hi) in bounds.items()))
    return make_pool(name, stats, np.flatnonzero(mask), origin)


def materialize(pool: Pool, dataset: Dataset, pools_dir: Path, records: bool = True) -> Path:
    """Write the pool's rows once, as JSONL (repeats expanded, dataset order); reuse if present.

    With ``records`` (what a trainer that reads the file needs), each line is the whole sample:
    images go to ``images/<sha256>.<format>`` beside the pool files (shared by all pools) and the
    ``image`` field holds that path relative to the pool file, so the file loads back as a dataset;
    videos likewise go to ``videos/<sha256>.<container>`` and the ``video`` field holds the path.
    Without, each line is the sample's id alone (``<digest>.ids.jsonl``): the pool's record for
    its lineage and for ``train --pool-file``, a few bytes a sample instead of a copy of its text.
    """
    path = pool_file_path(pools_dir, pool.digest, records)
    if path.exists():
        return path
    order = np.repeat(pool.rows, pool.repeats)
    with published(path) as tmp, tmp.open("w", encoding="utf-8") as f:
        lines = _lines(dataset, records)
        if lines is not None:
            f.writelines(lines[i] for i in order)
        else:
            for batch in dataset.table.take(pa.array(order)).to_batches(10_000):
                f.writelines(_line(record, pools_dir) for record in batch.to_pylist())
    return path


def pool_file_path(pools_dir: Path, digest: str, records: bool = True) -> Path:
    """Where :func:`materialize` writes the pool of ``digest``: its samples, or (``records`` False) their ids."""
    return pools_dir / f"{digest}{'' if records else '.ids'}.jsonl"


def _line(record: dict[str, Any], pools_dir: Path) -> str:
    """One sample as a JSON line, its image or video written beside the pool files."""
    if IMAGE in record:
        record[IMAGE] = _media_file(record[IMAGE], pools_dir / "images", image_suffix(record[IMAGE]))
    if VIDEO in record:
        record[VIDEO] = _media_file(record[VIDEO], pools_dir / "videos", _video_suffix(record[VIDEO]))
    return json.dumps(record, ensure_ascii=False, default=str) + "\n"


#: Per kind of pool file (records or ids), the last table whose pools were written and the JSON
#: line of each of its rows: the pools of a dataset share most of its rows, so each row is encoded
#: once, not once per pool.
_LINES: dict[bool, tuple[pa.Table, list[str]]] = {}
#: Above this size a table's rows are encoded pool by pool rather than kept in memory.
LINES_MAX_BYTES = 512 * 2**20


def _lines(dataset: Dataset, records: bool) -> list[str] | None:
    if records and (dataset.has_images or dataset.has_videos or dataset.table.nbytes > LINES_MAX_BYTES):
        return None
    if records not in _LINES or _LINES[records][0] is not dataset.table:
        rows = dataset.table.to_pylist() if records else ({ID: i} for i in dataset.ids.to_pylist())
        _LINES[records] = (dataset.table, [_line(record, Path()) for record in rows])
    return _LINES[records][1]


def _media_file(data: bytes, folder: Path, suffix: str) -> str:
    """The content-addressed file holding an encoded image or video, written once (atomically);
    returned as a path relative to the pool files."""
    path = folder / f"{hashlib.sha256(data).hexdigest()}{suffix}"
    if not path.exists():
        with published(path) as tmp:
            tmp.write_bytes(data)
    return path.relative_to(folder.parent).as_posix()


# Container signatures: (offset, magic bytes, suffix). The suffix only helps people and players;
# the pool file loads back whatever it is, since FFmpeg reads the container from its bytes.
_VIDEO_MAGIC = ((4, b"ftyp", ".mp4"), (0, b"\x1aE\xdf\xa3", ".mkv"), (0, b"OggS", ".ogv"),
                (8, b"AVI ", ".avi"), (0, b"FLV", ".flv"), (0, b"\x00\x00\x01\xba", ".mpg"))


def _video_suffix(data: bytes) -> str:
    """The file suffix of an encoded video's container (from its signature), else ``.video``."""
    for offset, magic, suffix in _VIDEO_MAGIC:
        if data[offset : offset + len(magic)] == magic:
            return suffix
    return ".video"
