"""Correlation between columns and hierarchical clustering of the correlation matrix."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mlsandbox.correlation import best_of_clusters, cluster, pearson_matrix


@pytest.fixture
def columns() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.normal(size=2000)
    return pd.DataFrame(
        {
            "x": x,
            "twice_x": 2 * x + 3,
            "minus_x": -x,
            "independent": rng.normal(size=2000),
            "constant": np.full(2000, 7.0),
            "id": [f"s{i}" for i in range(2000)],
        }
    )


def block_matrix(blocks: list[list[str]], within: float = 0.9, between: float = 0.1) -> pd.DataFrame:
    names = [n for block in blocks for n in block]
    block_of = {n: i for i, block in enumerate(blocks) for n in block}
    values = [
        [1.0 if a == b else within if block_of[a] == block_of[b] else between for b in names] for a in names
    ]
    return pd.DataFrame(values, index=names, columns=names)


def test_perfectly_correlated_columns_have_r_of_one(columns: pd.DataFrame) -> None:
    corr = pearson_matrix(columns)
    assert corr.loc["x", "twice_x"] == pytest.approx(1.0)


def test_anti_correlated_columns_have_r_of_minus_one(columns: pd.DataFrame) -> None:
    corr = pearson_matrix(columns)
    assert corr.loc["x", "minus_x"] == pytest.approx(-1.0)


def test_independent_columns_have_r_near_zero(columns: pd.DataFrame) -> None:
    assert abs(pearson_matrix(columns).loc["x", "independent"]) < 0.1


def test_constant_column_correlates_zero_with_others_and_one_with_itself(columns: pd.DataFrame) -> None:
    corr = pearson_matrix(columns)
    assert corr.loc["constant", "constant"] == 1.0
    assert (corr.loc["constant"].drop("constant") == 0.0).all()
    assert not corr.isna().any().any()


def test_matrix_is_symmetric_over_numeric_columns_only(columns: pd.DataFrame) -> None:
    corr = pearson_matrix(columns)
    assert list(corr.columns) == ["x", "twice_x", "minus_x", "independent", "constant"]
    assert list(corr.index) == list(corr.columns)
    np.testing.assert_allclose(corr.to_numpy(), corr.to_numpy().T)
    assert np.all(np.diag(corr.to_numpy()) == 1.0)


def test_pairs_with_missing_values_use_the_rows_observed_together() -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0, np.nan], "b": [2.0, 4.0, 6.0, 1.0], "c": [np.nan] * 3 + [1.0]})
    corr = pearson_matrix(frame)
    assert corr.loc["a", "b"] == pytest.approx(1.0)
    assert corr.loc["a", "c"] == 0.0  # no row observed with both


def test_a_frame_without_numeric_columns_is_an_error() -> None:
    with pytest.raises(ValueError, match="no numeric columns"):
        pearson_matrix(pd.DataFrame({"id": ["a", "b"]}))


def test_infinite_values_are_an_error() -> None:
    with pytest.raises(ValueError, match="infinite.*'b'"):
        pearson_matrix(pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [1.0, np.inf, 2.0]}))


@pytest.mark.parametrize(
    ("k", "expected"),
    [
        (2, [{"a1", "a2", "a3", "b1", "b2"}, {"c1", "c2"}]),
        (3, [{"a1", "a2", "a3"}, {"b1", "b2"}, {"c1", "c2"}]),
    ],
)
def test_block_structured_matrix_clusters_into_its_blocks(k: int, expected: list[set[str]]) -> None:
    corr = block_matrix([["a1", "a2", "a3"], ["b1", "b2"], ["c1", "c2"]])
    # Blocks a and b are closer to each other than to c, so k=2 merges a with b.
    for a in ("a1", "a2", "a3"):
        for b in ("b1", "b2"):
            corr.loc[a, b] = corr.loc[b, a] = 0.5
    clustering = cluster(corr, k)
    groups = clustering.groups()
    assert sorted(map(frozenset, groups.values()), key=sorted) == sorted(map(frozenset, expected), key=sorted)
    assert set(groups) == set(range(1, k + 1))
    assert clustering.n_clusters == k


def test_anti_correlated_items_cluster_together() -> None:
    corr = block_matrix([["a", "b"], ["c", "d"]])
    corr.loc["a", "b"] = corr.loc["b", "a"] = -0.95
    groups = cluster(corr, 2).groups()
    assert sorted(map(sorted, groups.values())) == [["a", "b"], ["c", "d"]]


def test_cluster_ids_follow_the_dendrogram_leaves_and_do_not_depend_on_item_order() -> None:
    corr = block_matrix([["a1", "a2"], ["b1", "b2", "b3"], ["c1"]])
    clustering = cluster(corr, 3)
    first_seen = list(dict.fromkeys(clustering.labels[n] for n in clustering.leaves))
    assert first_seen == [1, 2, 3]
    shuffled = corr.loc[corr.index[::-1], corr.columns[::-1]]
    again = cluster(shuffled, 3)
    assert sorted(map(sorted, again.groups().values())) == sorted(map(sorted, clustering.groups().values()))
    assert cluster(corr, 3).labels == clustering.labels


def test_members_of_a_cluster_are_contiguous_leaves() -> None:
    clustering = cluster(block_matrix([["a", "b", "c"], ["d", "e"], ["f", "g"]]), 3)
    ids = [clustering.labels[n] for n in clustering.leaves]
    assert ids == sorted(ids)


def test_clustering_keeps_the_linkage_matrix_and_names() -> None:
    corr = block_matrix([["a", "b"], ["c"]])
    clustering = cluster(corr, 2)
    assert clustering.linkage.shape == (2, 4)
    assert clustering.names == ["a", "b", "c"]
    merged_first, height = sorted(clustering.linkage[0, :2]), clustering.linkage[0, 2]
    assert merged_first == [0, 1] and height == pytest.approx(0.1)  # a and b, at distance 1 - 0.9


def test_k_equal_to_the_number_of_items_gives_singletons() -> None:
    clustering = cluster(block_matrix([["a", "b"], ["c"]]), 3)
    assert sorted(clustering.labels.values()) == [1, 2, 3]


def test_k_of_one_puts_everything_in_one_cluster() -> None:
    clustering = cluster(block_matrix([["a", "b"], ["c"]]), 1)
    assert clustering.groups() == {1: clustering.leaves}


def test_a_single_item_is_one_cluster() -> None:
    clustering = cluster(pd.DataFrame([[1.0]], index=["only"], columns=["only"]), 1)
    assert clustering.labels == {"only": 1}
    assert clustering.linkage.shape == (0, 4)
    assert clustering.groups() == {1: ["only"]}


@pytest.mark.parametrize("k", [0, -1, 4])
def test_k_outside_one_to_the_number_of_items_is_an_error(k: int) -> None:
    with pytest.raises(ValueError, match=r"between 1 and the number of items \(3\)"):
        cluster(block_matrix([["a", "b"], ["c"]]), k)


@pytest.mark.parametrize("k", [2.0, "2", True])
def test_k_must_be_an_integer(k: object) -> None:
    with pytest.raises(TypeError, match="k must be an integer"):
        cluster(block_matrix([["a", "b"], ["c"]]), k)  # type: ignore[arg-type]


def test_linkage_methods_for_non_euclidean_distances_only() -> None:
    with pytest.raises(ValueError, match="method must be one of"):
        cluster(block_matrix([["a", "b"], ["c"]]), 2, method="ward")


def test_a_matrix_that_is_not_a_correlation_matrix_is_an_error() -> None:
    corr = block_matrix([["a", "b"], ["c"]])
    with pytest.raises(ValueError, match="square"):
        cluster(corr.iloc[:, :2], 1)
    with pytest.raises(ValueError, match="NaN"):
        cluster(corr.replace(0.1, np.nan), 1)
    with pytest.raises(ValueError, match="empty"):
        cluster(pd.DataFrame(), 1)


def test_cut_height_separates_within_from_joining_merges() -> None:
    clustering = cluster(block_matrix([["a", "b"], ["c", "d"]]), 2)
    heights = clustering.linkage[:, 2]
    assert heights[1] < clustering.cut_height() < heights[2]


def test_best_of_clusters_picks_the_top_scored_member_of_each_cluster() -> None:
    clustering = cluster(block_matrix([["a", "b", "c"], ["d", "e"], ["f"]]), 3)
    best = best_of_clusters(clustering, {"a": 1.0, "b": 3.0, "c": 2.0, "d": -1.0, "e": -0.5})
    by_member = {clustering.labels[m]: m for m in best.values()}
    assert by_member == best
    assert set(best.values()) == {"b", "e"}  # f has no score: its cluster is omitted
    assert list(best) == sorted(best)


def test_best_of_clusters_skips_nan_scores() -> None:
    clustering = cluster(block_matrix([["a", "b"], ["c"]]), 2)
    best = best_of_clusters(clustering, {"a": math.nan, "b": 0.1, "c": math.nan})
    assert list(best.values()) == ["b"]
