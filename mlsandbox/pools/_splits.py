"""Single-OP splits: cuts at distinct values of a stat, degenerate splits named, seeded subsamples."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mlsandbox.errors import PoolError
from mlsandbox.pools._origins import SplitOrigin
from mlsandbox.pools._pool import Pool, make_pool
from mlsandbox.spec import PoolSpec
from mlsandbox.stats import StatsTable


@dataclass(frozen=True)
class SplitCut:
    """One split of an OP's stat before subsampling: its rows, its bounds, and why it is unusable.

    ``rows`` are every sample with ``lower <= stat <= upper`` (sorted; None = unbounded).
    ``degenerate`` is empty for a usable split, else the reason it is no split at all: it is
    empty, keeps every sample, or is one tied value spanning what should be several splits.
    """

    op: str
    split: str
    stat: str
    rows: np.ndarray
    lower: float | None
    upper: float | None
    degenerate: str = ""

    @property
    def name(self) -> str:
        return f"{self.op}/{self.split}"


def cut_splits(stats: StatsTable, op_name: str, spec: PoolSpec) -> list[SplitCut]:
    """Every split of one OP's split stat, cut at distinct values, from lowest to highest.

    Samples are ranked by the stat and cut at ``spec.cut_points()``; a cut that falls inside a
    run of tied values moves to the nearest boundary between distinct values (the lower one on
    a tie), so a split is a range of values and never holds part of a tied run. Splits may then
    differ in size. A split that is empty, that keeps every sample, or that is a single tied
    value that holds two whole intended splits, or two intended cut points, is reported
    as degenerate.
    """
    op = stats.op(op_name)
    key = op.split_stat()
    values = stats.stat(key).astype(float)
    n = len(values)
    if np.isnan(values).any():
        raise PoolError(f"{op_name}: {key} has NaN values; a split needs ordered values")
    order = np.argsort(values, kind="stable")
    ranked = values[order]
    boundaries = np.flatnonzero(ranked[1:] > ranked[:-1]) + 1  # i: ranked[i - 1] < ranked[i]
    intended = [int(round(q * n)) for q in spec.cut_points()]
    cuts = [_snap(c, boundaries, n) for c in intended]
    edges = [0, *cuts, n]
    out = []
    for i, split in enumerate(spec.splits):
        a, b = edges[i], edges[i + 1]
        rows = np.sort(order[a:b])
        lower = float(ranked[a]) if 0 < a < b else None  # empty splits have no bounds
        upper = float(ranked[b - 1]) if a < b < n else None
        reason = _degenerate(ranked, a, b, intended, spec.splits, key) if a < b else (
            f"empty: the cuts, moved to boundaries between distinct {key} values, meet here")
        out.append(SplitCut(op_name, split, key, rows, lower, upper, reason))
    return out


def _snap(cut: int, boundaries: np.ndarray, n: int) -> int:
    """The boundary between distinct values nearest to ``cut`` (all at the end when there is none)."""
    if len(boundaries) == 0:
        return n
    return int(boundaries[np.argmin(np.abs(boundaries - cut))])


def _degenerate(ranked: np.ndarray, a: int, b: int, intended: list[int], splits: list[str], key: str) -> str:
    """Why the split of ranked positions ``[a, b)`` is no usable split, or "" when it is one."""
    n = len(ranked)
    single = ranked[a] == ranked[b - 1]
    if a == 0 and b == n:
        what = f"all share {key} = {ranked[a]:g}" if single else "no cut separates them"
        return f"keeps every sample ({n}: {what})"
    if not single:
        return ""
    # One tied value: degenerate when it holds two whole intended splits, or two intended cuts.
    edges = [0, *intended, n]
    covered = sum(a <= lo < hi <= b for lo, hi in zip(edges[:-1], edges[1:]))
    inside = sum(a < c < b for c in intended)
    if max(covered, inside) < 2:
        return ""
    spanned = [s for s, lo, hi in zip(splits, edges[:-1], edges[1:]) if lo < b and a < hi]
    holds = f"{inside} of the intended cuts" if inside >= 2 else f"{covered} whole intended splits"
    return (f"one tied value, {key} = {ranked[a]:g} ({b - a} of {n} samples), spans what should be "
            f"{len(spanned)} splits ({', '.join(spanned)}) and holds {holds}: a split of one value is left "
            "out; the samples on either side of it keep their splits")


def split_pools(
    stats: StatsTable, op_name: str, spec: PoolSpec, cuts: Sequence[SplitCut] | None = None
) -> list[Pool]:
    """Equal-size pools of one OP's usable splits (:func:`cut_splits`), lowest values first.

    Each usable split is subsampled (seeded by ``spec.seed``, as :func:`subsample` draws) to the
    pool size, which defaults to the smallest usable split. Degenerate splits give no pool (see
    :func:`degenerate_splits`); an OP whose splits are all degenerate gives none. ``cuts``: the
    OP's :func:`cut_splits` where the caller has them already.
    """
    if cuts is None:
        cuts = cut_splits(stats, op_name, spec)
    usable = [cut for cut in cuts if not cut.degenerate]
    if not usable:
        return []
    size = pool_size(spec, [len(cut.rows) for cut in usable], f"{op_name} splits {spec.splits}")
    values = stats.stat(usable[0].stat).astype(float)
    pools = []
    for cut in usable:
        chosen = subsample(cut.rows, size, spec.seed)
        split_values = values[cut.rows]
        origin = SplitOrigin(op_name, cut.split, cut.stat, float(split_values.min()), float(split_values.max()),
                             float(values[chosen].mean()), cut.lower, cut.upper, len(cut.rows), spec.seed)
        pools.append(make_pool(cut.name, stats, chosen, origin))
    return pools


def degenerate_splits(stats: StatsTable, op_name: str, spec: PoolSpec) -> list[tuple[str, str]]:
    """``(pool name, reason)`` of each split of the OP that is no usable split (ties, empty)."""
    return [(cut.name, cut.degenerate) for cut in cut_splits(stats, op_name, spec) if cut.degenerate]


def subsample(rows: np.ndarray, size: int, seed: int) -> np.ndarray:
    """A seeded draw of ``size`` of ``rows`` (sorted, unique) without replacement, sorted.

    Recipes (``sample_size``, ``seed``) draw the same way, so a subsampled pool is reproduced by
    the recipe of its selection.
    """
    if size > len(rows):
        raise PoolError(f"cannot draw {size} samples from {len(rows)}")
    return np.sort(np.random.default_rng(seed).choice(rows, size, replace=False))


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
