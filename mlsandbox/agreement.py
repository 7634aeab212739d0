"""How far one fidelity's ranking of pools predicts another's, with an interval and a p-value.

Two numbers describe rank transfer: the Spearman correlation of the pools' deltas, and the
**decision accuracy** (AI2's DataDecide): the share of pairs of pools that both fidelities order
the same way. Either is a claim about the pools measured, so each comes with

- a 95% interval from a paired bootstrap over pools (pools are drawn with replacement, each
  keeping its two deltas): how much the number would move on another set of pools like these.
  A pool drawn twice forms no pair with itself in the decision accuracy, so duplicates do not
  count as agreements;
- a two-sided permutation p-value against "no association" (the costlier deltas shuffled over
  the pools), exact in distribution rather than asymptotic, which matters at a dozen pools.

Both are seeded, so the same deltas always give the same interval and p-value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as scistats

#: The interval's confidence level.
CONFIDENCE = 0.95
#: Resamples for the bootstrap interval and for the permutation p-value.
BOOTSTRAP_RESAMPLES = 2000
PERMUTATIONS = 9999
#: Fewer pools than this have no defined correlation, let alone an interval.
MIN_POOLS = 3
_SEED = 0
_BATCH = 250  # resamples per vectorised call: bounds memory at pools² × batch
NAN = float("nan")

#: A statistic of (cheap, costly, pool index) along the last axis.
Statistic = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def decision_accuracy(a: ArrayLike, b: ArrayLike) -> float:
    """The share of pairs (i, j) whose order under ``a`` is their order under ``b`` (DataDecide's
    decision accuracy); a pair tied under exactly one of them counts as a wrong decision, a pair
    tied under both as a right one. NaN with fewer than two items, or where either gives every
    item the same value: that ranks nothing, and 0 would read as a reversed ranking."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"decision_accuracy needs equal lengths, got {len(x)} and {len(y)}")
    if len(x) < 2:
        return NAN
    return float(_pairwise_agreement(x, y, np.arange(len(x))))


@dataclass(frozen=True)
class Estimate:
    """A statistic of the pools with its bootstrap interval and its permutation p-value."""

    value: float
    low: float
    high: float
    p_value: float


@dataclass(frozen=True)
class RankAgreement:
    pools: int
    spearman: Estimate
    decision_accuracy: Estimate


def rank_agreement(cheap: ArrayLike, costly: ArrayLike) -> RankAgreement:
    """Spearman and decision accuracy of two fidelities' deltas over the same pools, each with
    its interval and p-value. Below :data:`MIN_POOLS` pools only the decision accuracy's value is
    defined; neither statistic is where one column is constant (it ranks nothing)."""
    x, y = np.asarray(cheap, dtype=float), np.asarray(costly, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"rank_agreement needs equal lengths, got {len(x)} and {len(y)}")
    if len(x) < MIN_POOLS:
        return RankAgreement(len(x), Estimate(NAN, NAN, NAN, NAN),
                             Estimate(decision_accuracy(x, y), NAN, NAN, NAN))
    return RankAgreement(len(x), _estimate(x, y, _spearman_of), _estimate(x, y, _pairwise_agreement))


def _estimate(x: np.ndarray, y: np.ndarray, statistic: Statistic) -> Estimate:
    index = np.arange(len(x))
    value = float(statistic(x, y, index))
    if not np.isfinite(value):
        return Estimate(value, NAN, NAN, NAN)
    low, high = _bootstrap_interval(x, y, statistic)

    def shuffled(y_perm: np.ndarray, axis: int = -1) -> np.ndarray:
        return statistic(np.broadcast_to(x, y_perm.shape), y_perm, index)

    perm = scistats.permutation_test((y,), shuffled, permutation_type="pairings", n_resamples=PERMUTATIONS,
                                     batch=_BATCH, vectorized=True, random_state=_SEED)
    return Estimate(value, low, high, float(perm.pvalue))


def _bootstrap_interval(x: np.ndarray, y: np.ndarray, statistic: Statistic) -> tuple[float, float]:
    """The percentile interval over pools drawn with replacement. A resample on which the statistic
    is undefined (every draw the same pool, or a constant column) is left out rather than making the
    whole interval NaN, which is why this is not ``scipy.stats.bootstrap``."""
    rng = np.random.default_rng(_SEED)
    idx = rng.integers(len(x), size=(BOOTSTRAP_RESAMPLES, len(x)))
    values = np.concatenate([statistic(x[chunk], y[chunk], chunk) for chunk in np.array_split(
        idx, max(1, BOOTSTRAP_RESAMPLES // _BATCH))])
    tail = 100 * (1 - CONFIDENCE) / 2
    low, high = np.nanpercentile(values, [tail, 100 - tail])
    return float(low), float(high)


def _spearman_of(x: np.ndarray, y: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Pearson of the ranks along the last axis (ties get their average rank); NaN for a constant row."""
    rx, ry = (scistats.rankdata(v, axis=-1) for v in (x, y))
    rx, ry = rx - rx.mean(axis=-1, keepdims=True), ry - ry.mean(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (rx * ry).sum(axis=-1) / np.sqrt((rx**2).sum(axis=-1) * (ry**2).sum(axis=-1))


def _pairwise_agreement(x: np.ndarray, y: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Decision accuracy along the last axis over pairs of distinct pools (``idx`` names each
    position's pool, so a pool drawn twice by the bootstrap is not paired with itself)."""
    i, j = np.triu_indices(x.shape[-1], k=1)
    cheap, costly = np.sign(x[..., i] - x[..., j]), np.sign(y[..., i] - y[..., j])
    distinct = idx[..., i] != idx[..., j]
    # A side that ties every pair ranks nothing: its "agreement" would be 0, read as a reversed ranking.
    ranked = ((cheap != 0) & distinct).any(axis=-1) & ((costly != 0) & distinct).any(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = ((cheap == costly) & distinct).sum(axis=-1) / distinct.sum(axis=-1)
    return np.where(ranked, share, NAN)
