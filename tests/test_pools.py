"""Pools are equal-size, disjoint selections over the stats table with a content digest; splits are
cut between distinct values, and tied values that cannot be split are reported, not pooled."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from mlsandbox.data import load_dataset
from mlsandbox.data._dataset import make_dataset
from mlsandbox.errors import PoolError
from mlsandbox.ops import create_op
from mlsandbox.pools import (
    FileOrigin,
    Pool,
    RandomOrigin,
    cut_splits,
    degenerate_splits,
    filter_pool,
    materialize,
    random_pool,
    split_pools,
    subsample,
)
from mlsandbox.spec import DatasetSpec, PoolSpec
from mlsandbox.stats import StatsTable, compute_stats


@pytest.fixture
def prepared(small_corpus: Path, tmp_path: Path):
    dataset = load_dataset(DatasetSpec(path=str(small_corpus)))
    ops = [create_op("text_length_filter"), create_op("alphanumeric_filter")]
    return dataset, compute_stats(dataset, ops, tmp_path, progress=False)


def test_terciles_are_equal_size_disjoint_and_ordered(prepared) -> None:
    _, stats = prepared
    low, mid, high = split_pools(stats, "text_length_filter", PoolSpec())
    assert [p.name for p in (low, mid, high)] == [f"text_length_filter/{s}" for s in ("low", "mid", "high")]
    # text lengths tie (the cat sentences): cuts move to distinct values, splits of 29/44/17 samples
    # are subsampled to the smallest
    assert [p.origin.split_size for p in (low, mid, high)] == [29, 44, 17]
    assert low.size == mid.size == high.size == 17
    assert set(low.rows) & set(mid.rows) == set() and set(mid.rows) & set(high.rows) == set()
    values = stats.stat("text_len")
    assert values[low.rows].max() < values[mid.rows].min()
    assert values[mid.rows].max() < values[high.rows].min()
    assert (low.origin.lower, low.origin.upper, high.origin.upper) == (None, 23.0, None)
    assert low.origin.stat_max == low.origin.upper and high.origin.stat_min == high.origin.lower


def test_the_split_bounds_select_exactly_the_whole_split(prepared) -> None:
    _, stats = prepared
    values = stats.stat("text_len")
    cuts = cut_splits(stats, "text_length_filter", PoolSpec())
    for cut in cuts:
        lo = -np.inf if cut.lower is None else cut.lower
        hi = np.inf if cut.upper is None else cut.upper
        assert cut.rows.tolist() == np.flatnonzero((values >= lo) & (values <= hi)).tolist()
    assert sum(len(c.rows) for c in cuts) == len(stats)
    for pool, cut in zip(split_pools(stats, "text_length_filter", PoolSpec()), cuts):
        assert pool.rows.tolist() == subsample(cut.rows, pool.size, 42).tolist()
        assert set(pool.rows) <= set(cut.rows)


def test_custom_cut_points_are_subsampled_to_equal_size(prepared) -> None:
    _, stats = prepared
    spec = PoolSpec(splits=["bottom", "rest"], quantiles=[0.2])
    bottom, rest = split_pools(stats, "alphanumeric_filter", spec)
    assert bottom.size == rest.size == 19


def test_a_pool_size_larger_than_a_split_is_a_clear_error(prepared) -> None:
    _, stats = prepared
    with pytest.raises(PoolError, match="pools.size=20 but the smallest split has 17"):
        split_pools(stats, "text_length_filter", PoolSpec(size=20))
    assert split_pools(stats, "text_length_filter", PoolSpec(size=10))[0].size == 10


def _table(values: list[float]) -> StatsTable:
    frame = pd.DataFrame({"id": [f"d{i}" for i in range(len(values))], "text_len": values})
    return StatsTable(frame, "digest", [create_op("text_length_filter")], [])


def test_cuts_never_fall_inside_tied_values() -> None:
    # 200 identical values then 100 distinct: the tied value spans what should be low and mid
    stats = _table([float(10 + i) for i in range(100)] + [5.0] * 200)
    low, mid, high = cut_splits(stats, "text_length_filter", PoolSpec())
    assert "one tied value, text_len = 5 (200 of 300 samples), spans what should be 2 splits (low, mid)" in low.degenerate
    assert mid.degenerate.startswith("empty") and len(mid.rows) == 0
    assert not high.degenerate and (high.lower, high.upper, len(high.rows)) == (10.0, None, 100)
    pools = split_pools(stats, "text_length_filter", PoolSpec())
    assert [p.name for p in pools] == ["text_length_filter/high"] and pools[0].size == 100
    assert pools[0].rows.tolist() == list(range(100))
    assert [name for name, _ in degenerate_splits(stats, "text_length_filter", PoolSpec())] == [
        "text_length_filter/low", "text_length_filter/mid"]


def test_a_two_valued_stat_gives_two_splits_and_an_empty_one() -> None:
    stats = _table([0.0] * 150 + [1.0] * 150)
    low, mid, high = cut_splits(stats, "text_length_filter", PoolSpec())
    assert (low.upper, high.lower, len(low.rows), len(high.rows)) == (0.0, 1.0, 150, 150)
    assert not low.degenerate and not high.degenerate and mid.degenerate.startswith("empty")


def test_identical_values_give_no_split_at_all() -> None:
    stats = _table([3.0] * 300)
    reasons = dict(degenerate_splits(stats, "text_length_filter", PoolSpec()))
    assert reasons["text_length_filter/low"] == "keeps every sample (300: all share text_len = 3)"
    assert reasons["text_length_filter/mid"].startswith("empty") and reasons["text_length_filter/high"].startswith("empty")
    assert split_pools(stats, "text_length_filter", PoolSpec()) == []


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
    # each seed reads the pool in its own order, the same one every time
    assert twice.training_order(seed=0).tolist() == twice.training_order(seed=0).tolist()
    assert twice.training_order(seed=0).tolist() != twice.training_order(seed=1).tolist()


def test_materialising_writes_the_rows_once(prepared, tmp_path: Path) -> None:
    dataset, stats = prepared
    pool = split_pools(stats, "text_length_filter", PoolSpec())[0].repeated(2)
    path = materialize(pool, dataset, tmp_path / "pools")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == pool.size
    assert sorted({r["id"] for r in rows}) == sorted(pool.ids(stats).tolist())
    mtime = path.stat().st_mtime_ns
    assert materialize(pool, dataset, tmp_path / "pools") == path and path.stat().st_mtime_ns == mtime


def test_a_pool_file_holds_each_row_as_the_dataset_has_it(tmp_path: Path) -> None:
    """Rows are encoded once per dataset and reused by every pool: each line is still exactly its row,
    metadata of every type included, in dataset order with repeats."""
    table = pa.table({"id": ["a", "b", "c"], "text": ["plain", "ünï \"quoted\"\n", ""],
                      "score": [0.1, None, 1e300], "n": [1, 2, None], "tags": [["x"], [], None]})
    dataset = make_dataset(table, "inline", "inline")
    rows = np.array([0, 2])
    for repeats in ([1, 1], [2, 3]):
        pool = Pool(f"p{repeats}", dataset.digest, rows, np.array(repeats), RandomOrigin(0))
        written = materialize(pool, dataset, tmp_path / "pools").read_text(encoding="utf-8")
        expected = [json.dumps(table.slice(int(r), 1).to_pylist()[0], ensure_ascii=False) + "\n"
                    for r in np.repeat(rows, repeats)]
        assert written == "".join(expected)


def test_a_pool_recorded_by_ids_lists_each_sample_as_often_as_it_repeats(tmp_path: Path) -> None:
    """The ids file of a pool (what cells of the built-in trainers record) is a file of its own beside
    the whole-sample one, in dataset order with repeats, and nothing but the ids."""
    table = pa.table({"id": ["a", "b", "c"], "text": ["plain", "ünï", ""], "score": [0.1, None, 2.0]})
    dataset = make_dataset(table, "inline", "inline")
    pool = Pool("p", dataset.digest, np.array([0, 2]), np.array([2, 1]), RandomOrigin(0))
    ids = materialize(pool, dataset, tmp_path / "pools", records=False)
    assert ids.name == f"{pool.digest}.ids.jsonl"
    assert ids.read_text(encoding="utf-8") == '{"id": "a"}\n{"id": "a"}\n{"id": "c"}\n'
    whole = materialize(pool, dataset, tmp_path / "pools")
    assert whole.name == f"{pool.digest}.jsonl" and '"text": "plain"' in whole.read_text(encoding="utf-8")


def test_the_text_bytes_of_a_dataset_are_utf8_lengths() -> None:
    dataset = make_dataset(pa.table({"id": ["a", "b", "c"], "text": ["plain", "ünï 😀", ""]}), "inline", "inline")
    assert dataset.text_bytes.tolist() == [len(t.encode("utf-8")) for t in dataset.texts] == [5, 10, 0]


def test_a_tied_value_in_the_middle_holding_two_cut_points_is_no_split() -> None:
    stats = _table([float(i) for i in range(50)] + [70.0] * 200 + [float(100 + i) for i in range(50)])
    low, mid, high = cut_splits(stats, "text_length_filter", PoolSpec())
    assert (len(low.rows), len(mid.rows), len(high.rows)) == (50, 200, 50)
    assert mid.degenerate.endswith("spans what should be 3 splits (low, mid, high) and holds 2 of the intended "
                                   "cuts: a split of one value is left out; the samples on either side of it keep "
                                   "their splits")
    assert (low.upper, high.lower) == (49.0, 100.0) and not low.degenerate and not high.degenerate


def test_a_pools_repr_names_it_without_its_rows() -> None:
    pool = Pool("big", "d", np.arange(5000), np.ones(5000, dtype=np.int64), FileOrigin("mine.jsonl"))
    assert repr(pool) == (f"Pool(name='big', size=5000, unique_size=5000, digest={pool.digest!r}, "
                          "origin=FileOrigin(source='mine.jsonl'))")
