"""Pools: selections over the stats table (sample rows + repeat counts), identified by a digest.

A pool never copies data. Its rows are positions in the dataset's stats table, so building
every single-OP pool of a million samples is a handful of NumPy sorts; rows are written out
once, by :func:`materialize`, when a trainer needs them.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import ClassVar

import numpy as np
import pyarrow as pa

from mlsandbox.data import IMAGE, Dataset
from mlsandbox.errors import PoolError
from mlsandbox.images import image_suffix
from mlsandbox.spec import PoolSpec
from mlsandbox.stats import StatsTable

RANDOM = "random"
RECIPE = "recipe"
FILE = "file"

#: What a pool origin logs as MLflow params (and shows in tables).
OriginParams = dict[str, str | int | float]


class _SelectionOrigin:
    """An origin whose only logged param is its split kind (``recipe`` unless it says otherwise)."""

    split: ClassVar[str] = RECIPE

    def params(self) -> OriginParams:
        return {"split": self.split}


@dataclass(frozen=True)
class SplitOrigin:
    """One split (``low``, ``mid``, ...) of one OP's stat: a single-OP pool of the probe."""

    op: str
    split: str
    stat: str
    stat_min: float
    stat_max: float
    stat_mean: float

    def params(self) -> OriginParams:
        return {"op": self.op, "split": self.split, "stat": self.stat,
                "stat_min": self.stat_min, "stat_max": self.stat_max}


@dataclass(frozen=True)
class RandomOrigin(_SelectionOrigin):
    """The control group: a seeded uniform draw."""

    seed: int
    split: ClassVar[str] = RANDOM


@dataclass(frozen=True)
class BoundsOrigin(_SelectionOrigin):
    """Samples whose stats lie within per-stat bounds."""

    bounds: tuple[tuple[str, float | None, float | None], ...]


@dataclass(frozen=True)
class RecipeOrigin:
    """The samples a recipe selects: its conditions, then its seeded subsample, ``repeat`` times."""

    recipe: str
    recipe_digest: str
    sample_size: int | None
    seed: int
    repeat: int
    split: ClassVar[str] = RECIPE

    def params(self) -> OriginParams:
        return {"split": RECIPE, "recipe": self.recipe, "repeat": self.repeat}


@dataclass(frozen=True)
class IntersectionOrigin(_SelectionOrigin):
    """Samples held by every one of several pools (a pyramid level, a cluster recipe)."""

    pools: tuple[str, ...]

    @property
    def level(self) -> int:
        return len(self.pools)


@dataclass(frozen=True)
class FillOrigin(_SelectionOrigin):
    """A duplication-study budget filled from the highest pyramid levels down, without repeats."""

    multiple: int
    lowest_level: int


@dataclass(frozen=True)
class FileOrigin(_SelectionOrigin):
    """The samples a pool file names by id (``train --pool-file``, ``--pool-run``)."""

    source: str
    split: ClassVar[str] = FILE


@dataclass(frozen=True)
class RepeatOrigin:
    """Another pool's samples, each seen ``times`` times as often (the duplication study)."""

    base: PoolOrigin
    times: int

    @property
    def split(self) -> str:
        return self.base.split

    def params(self) -> OriginParams:
        return {**self.base.params(), "repeat": self.times}


PoolOrigin = (SplitOrigin | RandomOrigin | BoundsOrigin | RecipeOrigin | IntersectionOrigin | FillOrigin | FileOrigin
              | RepeatOrigin)


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


def split_pools(stats: StatsTable, op_name: str, spec: PoolSpec) -> list[Pool]:
    """Equal-size pools of one OP's split stat, from lowest to highest values (``low/mid/high``).

    Samples are ranked by the stat and cut at ``spec.cut_points()``; ties are broken by a seeded
    shuffle, so that equal values do not fall into a split by dataset order. Each part is then
    subsampled (seeded) to the pool size, which defaults to the smallest part. Only the cut
    points need to be exact, so a partition (linear time) replaces a full sort.
    """
    op = stats.op(op_name)
    key = op.split_stat()
    values = stats.stat(key).astype(float)
    n = len(values)
    rng = np.random.default_rng(spec.seed)
    shuffled = rng.permutation(n)
    cuts = [int(round(q * n)) for q in spec.cut_points()]
    inner = [c for c in cuts if 0 < c < n]
    order = shuffled[np.argpartition(values[shuffled], inner)] if inner else shuffled
    bounds = [0] + cuts + [n]
    parts = [order[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    size = pool_size(spec, [len(p) for p in parts], f"{op_name} splits {spec.splits}")
    pools = []
    for split, part in zip(spec.splits, parts):
        chosen = part if len(part) == size else rng.choice(part, size, replace=False)
        chosen_values = values[chosen]
        origin = SplitOrigin(op_name, split, key, float(chosen_values.min()), float(chosen_values.max()),
                             float(chosen_values.mean()))
        pools.append(make_pool(f"{op_name}/{split}", stats, chosen, origin))
    return pools


def pool_size(spec: PoolSpec, available: Sequence[int], what: str) -> int:
    """The configured pool size, or the smallest available part; an error if a part is smaller."""
    smallest = min(available)
    if smallest == 0:
        raise PoolError(f"{what}: a split is empty (sizes {list(available)}); the dataset is too small")
    if spec.size is None:
        return smallest
    if spec.size > smallest:
        raise PoolError(
            f"{what}: pools.size={spec.size} but the smallest split has {smallest} samples "
            f"(sizes {list(available)}); lower pools.size or leave it unset"
        )
    return spec.size


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


def materialize(pool: Pool, dataset: Dataset, pools_dir: Path) -> Path:
    """Write the pool's rows once, as JSONL (repeats expanded, dataset order); reuse if present.

    Images go to ``images/<sha256>.<format>`` beside the pool files (shared by all pools) and the
    ``image`` field holds that path relative to the pool file, so the file loads back as a dataset.
    """
    path = pools_dir / f"{pool.digest}.jsonl"
    if path.exists():
        return path
    pools_dir.mkdir(parents=True, exist_ok=True)
    rows = dataset.table.take(pa.array(np.repeat(pool.rows, pool.repeats)))
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    with tmp.open("w", encoding="utf-8") as f:
        for batch in rows.to_batches(10_000):
            for record in batch.to_pylist():
                if IMAGE in record:
                    record[IMAGE] = _image_file(record[IMAGE], pools_dir).relative_to(pools_dir).as_posix()
                f.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
    os.replace(tmp, path)
    return path


def _image_file(data: bytes, pools_dir: Path) -> Path:
    """The content-addressed file holding an encoded image, written once (atomically)."""
    path = pools_dir / "images" / f"{hashlib.sha256(data).hexdigest()}{image_suffix(data)}"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return path
