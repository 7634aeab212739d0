"""When a pool's decision is made: the stopping rule of the seed race and the screen's cut.

A step picks k pools (the probe: ``refine.top_k`` splits of distinct OPs; refine: the best
recipe). Intervals are the 95% t-intervals of the per-seed deltas. For a pool p:

- **certainly out**: k other OPs each have a pool whose interval lies wholly above p's;
- **certainly in**: fewer than k other OPs have a pool whose interval reaches above p's lower end;
- **settled**: its interval excludes zero (it beats, or loses to, the random control).

In a race, a pool gets another seed until it is certainly out, or settled and its top-k
membership is certain (in or out), or it has the maximum. After a screen, the deciding model
trains the screen's best ``margin`` x k pools and every pool the screen leaves open (not
certainly out, or not settled). Pools of the same OP compete for one place of the top-k.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from mlsandbox.executors.comparison import PoolComparison


def _group(item: PoolComparison) -> str:
    return item.pool.op or item.pool.digest


def _interval(item: PoolComparison) -> tuple[float, float] | None:
    s = item.summary
    if s is None or not (math.isfinite(s.ci_low) and math.isfinite(s.ci_high)):
        return None
    return s.ci_low, s.ci_high


def _others_by_group(item: PoolComparison, items: Sequence[PoolComparison]) -> dict[str, list[tuple[float, float]]]:
    groups: dict[str, list[tuple[float, float]]] = {}
    for other in items:
        interval = _interval(other)
        if other is not item and interval is not None and _group(other) != _group(item):
            groups.setdefault(_group(other), []).append(interval)
    return groups


def certainly_out(item: PoolComparison, items: Sequence[PoolComparison], k: int) -> bool:
    """k other OPs each have a pool whose interval lies wholly above this pool's."""
    mine = _interval(item)
    if mine is None:
        return item.summary is None  # every cell failed: nothing more to learn
    above = [g for g, intervals in _others_by_group(item, items).items() if max(lo for lo, _ in intervals) > mine[1]]
    return len(above) >= k


def certainly_in(item: PoolComparison, items: Sequence[PoolComparison], k: int) -> bool:
    """Fewer than k other OPs have a pool whose interval reaches above this pool's lower end."""
    mine = _interval(item)
    if mine is None:
        return False
    maybe_above = [g for g, intervals in _others_by_group(item, items).items() if max(hi for _, hi in intervals) > mine[0]]
    return len(maybe_above) < k


def settled(item: PoolComparison) -> bool:
    """The interval excludes zero: the pool beats, or loses to, its random control."""
    interval = _interval(item)
    return interval is not None and (interval[0] > 0 or interval[1] < 0)


def still_open(item: PoolComparison, items: Sequence[PoolComparison], k: int) -> bool:
    """Another seed could change the decision about this pool."""
    if item.summary is None or certainly_out(item, items, k):
        return False
    return not (settled(item) and certainly_in(item, items, k))


def open_after_screen(items: Sequence[PoolComparison], k: int, margin: int) -> list[bool]:
    """Per item, whether the deciding model trains its pool after the screen measured ``items``."""
    measured = [i for i in items if i.summary is not None]
    best = {id(i) for i in sorted(measured, key=lambda i: -i.summary.mean)[: margin * k]}  # type: ignore[union-attr]
    return [i.summary is not None and (id(i) in best or not certainly_out(i, measured, k) or not settled(i))
            for i in items]
