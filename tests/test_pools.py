"""Pools are equal-size, disjoint selections over the stats table with a content digest."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mlsandbox.data import load_dataset
from mlsandbox.errors import PoolError
from mlsandbox.ops import create_op
from mlsandbox.pools import filter_pool, materialize, random_pool, split_pools
from mlsandbox.spec import DatasetSpec, PoolSpec
from mlsandbox.stats import compute_stats


@pytest.fixture
def prepared(small_corpus: Path, tmp_path: Path):
    dataset = load_dataset(DatasetSpec(path=str(small_corpus)))
    ops = [create_op("text_length_filter"), create_op("alphanumeric_filter")]
    return dataset, compute_stats(dataset, ops, tmp_path, progress=False)


def test_terciles_are_equal_size_disjoint_and_ordered(prepared) -> None:
    _, stats = prepared
    low, mid, high = split_pools(stats, "text_length_filter", PoolSpec())
    assert [p.name for p in (low, mid, high)] == [f"text_length_filter/{s}" for s in ("low", "mid", "high")]
    assert low.size == mid.size == high.size == 30
    assert set(low.rows) & set(mid.rows) == set() and set(mid.rows) & set(high.rows) == set()
    values = stats.stat("text_len")
    assert values[low.rows].max() <= values[mid.rows].min()
    assert values[mid.rows].max() <= values[high.rows].min()
    assert low.origin.stat_max == values[low.rows].max()


def test_custom_cut_points_are_subsampled_to_equal_size(prepared) -> None:
    _, stats = prepared
    spec = PoolSpec(splits=["bottom", "rest"], quantiles=[0.2])
    bottom, rest = split_pools(stats, "alphanumeric_filter", spec)
    assert bottom.size == rest.size == 18


def test_a_pool_size_larger_than_a_split_is_a_clear_error(prepared) -> None:
    _, stats = prepared
    with pytest.raises(PoolError, match="pools.size=40 but the smallest split has 30"):
        split_pools(stats, "text_length_filter", PoolSpec(size=40))
    assert split_pools(stats, "text_length_filter", PoolSpec(size=10))[0].size == 10


def test_the_random_pool_is_seeded(prepared) -> None:
    _, stats = prepared
    a, b, c = random_pool(stats, 30, seed=1), random_pool(stats, 30, seed=1), random_pool(stats, 30, seed=2)
    assert a.size == 30 and a.digest == b.digest != c.digest
    assert a.repeats.tolist() == [1] * 30
    with pytest.raises(PoolError):
        random_pool(stats, 0, seed=1)


def test_a_random_pool_beyond_the_dataset_repeats_every_sample_uniformly(prepared) -> None:
    _, stats = prepared
    n = len(stats)
    pool = random_pool(stats, 2 * n + 7, seed=3)
    assert pool.size == 2 * n + 7 and pool.unique_size == n
    assert sorted(set(pool.repeats.tolist())) == [2, 3] and int((pool.repeats == 3).sum()) == 7


def test_a_recipe_filter_intersects_bounds(prepared) -> None:
    _, stats = prepared
    pool = filter_pool(stats, {"text_len": (20, None), "alnum_ratio": (None, 0.9)}, "recipe")
    lengths, alnum = stats.stat("text_len"), stats.stat("alnum_ratio")
    expected = np.flatnonzero((lengths >= 20) & (alnum <= 0.9))
    assert pool.rows.tolist() == expected.tolist()
    with pytest.raises(PoolError, match="min 5 is above max 1"):
        filter_pool(stats, {"text_len": (5, 1)}, "bad")
    with pytest.raises(PoolError, match="empty"):
        filter_pool(stats, {"text_len": (10**9, None)}, "nothing")
    with pytest.raises(KeyError, match="no stat 'nope'"):
        filter_pool(stats, {"nope": (0, 1)}, "unknown")


def test_the_digest_identifies_rows_and_repeats(prepared) -> None:
    _, stats = prepared
    low = split_pools(stats, "text_length_filter", PoolSpec())[0]
    twice = low.repeated(2)
    assert twice.size == 2 * low.size and twice.unique_size == low.unique_size
    assert twice.digest != low.digest
    assert split_pools(stats, "text_length_filter", PoolSpec())[0].digest == low.digest
    assert sorted(twice.training_order(seed=0).tolist()) == sorted(np.repeat(low.rows, 2).tolist())


def test_materialising_writes_the_rows_once(prepared, tmp_path: Path) -> None:
    dataset, stats = prepared
    pool = split_pools(stats, "text_length_filter", PoolSpec())[0].repeated(2)
    path = materialize(pool, dataset, tmp_path / "pools")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == pool.size
    assert sorted({r["id"] for r in rows}) == sorted(pool.ids(stats).tolist())
    mtime = path.stat().st_mtime_ns
    assert materialize(pool, dataset, tmp_path / "pools") == path and path.stat().st_mtime_ns == mtime
