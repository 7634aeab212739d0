"""Correlation and hierarchical clustering of OP stats or benchmark metrics (paper App. B.2).

The Analyze step asks which OPs measure much the same thing, and which benchmarks move
together across probed models. Both questions are answered the same way: a Pearson matrix
over the columns of a frame, then average-linkage clustering on the distance ``1 - |r|``,
so that strongly anti-correlated items (``r`` near -1) fall in the same cluster as strongly
correlated ones. A Refine recipe then keeps the best OP of each cluster.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

LINKAGE_METHODS = ("single", "complete", "average", "weighted")
"""Linkage methods valid on an arbitrary (non-Euclidean) distance such as ``1 - |r|``."""


def pearson_matrix(frame: pd.DataFrame) -> pd.DataFrame:
    """Pearson correlation between the numeric columns of ``frame`` (rows are observations).

    Non-numeric columns (a sample ``id``, a ``lang`` label) are left out. Missing values are
    dropped pair by pair. A constant column has no defined correlation; it gets 0 with every
    other column and 1 on the diagonal, so the result never holds NaN and can be clustered.
    The same holds for a pair of columns with fewer than two rows observed together.
    """
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"frame must be a pandas DataFrame, got {type(frame).__name__}")
    numeric = frame.select_dtypes(include="number")
    if numeric.shape[1] == 0:
        raise ValueError(f"no numeric columns to correlate; columns are {list(frame.columns)}")
    values = numeric.to_numpy(dtype=float)
    if np.isinf(values).any():
        bad = [c for c in numeric.columns if np.isinf(numeric[c].to_numpy(dtype=float)).any()]
        raise ValueError(f"columns hold infinite values, correlation is undefined: {bad}")
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = numeric.corr(method="pearson").to_numpy(copy=True)
    corr = np.clip(np.nan_to_num(corr, nan=0.0), -1.0, 1.0)
    np.fill_diagonal(corr, 1.0)
    names = [str(c) for c in numeric.columns]
    return pd.DataFrame(corr, index=names, columns=names)


@dataclass(frozen=True)
class Clustering:
    """Items grouped into clusters, with the linkage matrix behind the grouping.

    ``labels`` maps each item to a cluster id in ``1..m``, numbered in order of first
    appearance along the dendrogram's leaves so that the same data always gives the same ids.
    ``linkage`` is scipy's ``(n - 1, 4)`` matrix (empty for a single item).
    """

    labels: dict[str, int]
    linkage: np.ndarray = field(repr=False)
    names: list[str]

    @property
    def leaves(self) -> list[str]:
        """The items in dendrogram leaf order (members of a cluster are contiguous)."""
        if len(self.names) < 2:
            return list(self.names)
        from scipy.cluster.hierarchy import leaves_list

        return [self.names[i] for i in leaves_list(self.linkage)]

    @property
    def n_clusters(self) -> int:
        return len(set(self.labels.values()))

    def groups(self) -> dict[int, list[str]]:
        """Cluster id → its members in dendrogram leaf order, ids ascending."""
        out: dict[int, list[str]] = {}
        for name in self.leaves:
            out.setdefault(self.labels[name], []).append(name)
        return dict(sorted(out.items()))

    def cut_height(self) -> float:
        """A linkage distance that separates the clusters: above every within-cluster merge,
        below every merge that joins two clusters (used to colour a dendrogram)."""
        heights = self.linkage[:, 2] if len(self.names) > 1 else np.empty(0)
        m = self.n_clusters
        if heights.size == 0:
            return 0.0
        if m <= 1:
            return float(heights[-1]) * 1.05 + 1e-9
        joining = heights[heights.size - (m - 1) :]
        within = heights[: heights.size - (m - 1)]
        if within.size == 0:
            return float(joining.min()) / 2
        return float(within.max() + joining.min()) / 2


def cluster(corr: pd.DataFrame, k: int, method: str = "average") -> Clustering:
    """Hierarchical clustering of the items of a correlation matrix into at most ``k`` groups.

    The distance is ``1 - |r|``; scipy's ``fcluster(..., criterion="maxclust")`` cuts the tree
    into at most ``k`` clusters (fewer when merge heights tie). ``method`` is a scipy linkage
    method valid on non-Euclidean distances: one of ``LINKAGE_METHODS``.
    """
    names = _validate_corr(corr)
    n = len(names)
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise TypeError(f"k must be an integer, got {k!r}")
    if not 1 <= k <= n:
        raise ValueError(f"k must be between 1 and the number of items ({n}), got {k}")
    if method not in LINKAGE_METHODS:
        raise ValueError(f"method must be one of {LINKAGE_METHODS}, got {method!r}")
    if n == 1:
        return Clustering({names[0]: 1}, np.empty((0, 4)), names)

    from scipy.cluster.hierarchy import fcluster, leaves_list, linkage
    from scipy.spatial.distance import squareform

    r = corr.to_numpy(dtype=float)
    dist = np.clip(1.0 - np.abs((r + r.T) / 2), 0.0, 1.0)
    np.fill_diagonal(dist, 0.0)
    z = linkage(squareform(dist, checks=False), method=method)
    raw = fcluster(z, t=int(k), criterion="maxclust")
    renumber: dict[int, int] = {}
    for leaf in leaves_list(z):
        renumber.setdefault(int(raw[leaf]), len(renumber) + 1)
    labels = {name: renumber[int(raw[i])] for i, name in enumerate(names)}
    return Clustering(labels, z, names)


def best_of_clusters(clustering: Clustering, scores: Mapping[str, float]) -> dict[int, str]:
    """The highest-scoring member of each cluster: cluster id → member.

    Members without a score (absent or NaN) are skipped and a cluster with none is omitted;
    ties go to the member first in dendrogram leaf order.
    """
    best: dict[int, str] = {}
    for cid, members in clustering.groups().items():
        scored = [(float(scores[m]), m) for m in members if m in scores and not math.isnan(float(scores[m]))]
        if scored:
            top = max(s for s, _ in scored)
            best[cid] = next(m for s, m in scored if s == top)
    return best


def _validate_corr(corr: pd.DataFrame) -> list[str]:
    if not isinstance(corr, pd.DataFrame):
        raise TypeError(f"corr must be a pandas DataFrame, got {type(corr).__name__}")
    if corr.shape[0] == 0:
        raise ValueError("corr is empty: nothing to cluster")
    if corr.shape[0] != corr.shape[1] or list(corr.index) != list(corr.columns):
        raise ValueError("corr must be square with the same labels, in the same order, on rows and columns")
    names = [str(c) for c in corr.columns]
    if len(set(names)) != len(names):
        raise ValueError(f"corr has duplicate labels: {names}")
    values = corr.to_numpy(dtype=float)
    if not np.isfinite(values).all():
        raise ValueError("corr holds NaN or infinite values (pearson_matrix never does)")
    if (np.abs(values) > 1 + 1e-9).any():
        raise ValueError("corr values must lie in [-1, 1]")
    return names
