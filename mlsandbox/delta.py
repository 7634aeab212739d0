"""The relative change of a pool's model over the random baseline (paper Eq. 3), with statistics.

``delta = sum_i(s_i - s'_i) / sum_i(s'_i)`` over benchmarks ``i``, where ``s`` are the scores of
the model trained on the pool and ``s'`` those of the model trained on the equal-size random
pool with the same seed. Scores must be positive and higher-is-better (``1 / bits-per-byte``):
with a negative denominator the sign of the delta would flip.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as scistats


def relative_delta(scores: Mapping[str, float], baseline: Mapping[str, float]) -> float:
    """Eq. 3 over the benchmarks both runs have; an error if they differ or a score is not positive."""
    if set(scores) != set(baseline):
        raise ValueError(f"benchmarks differ: {sorted(scores)} vs baseline {sorted(baseline)}")
    if not scores:
        raise ValueError("no benchmark scores to compare")
    bad = {k: v for k, v in {**scores, **baseline}.items() if not (math.isfinite(v) and v > 0)}
    if bad:
        raise ValueError(f"scores must be positive and higher-is-better (e.g. 1/bpb), got {bad}")
    keys = sorted(scores)
    return sum(scores[k] - baseline[k] for k in keys) / sum(baseline[k] for k in keys)


@dataclass(frozen=True)
class DeltaSummary:
    """A pool's deltas over seeds: mean ± std (ddof=1), and a paired test against the baseline."""

    deltas: tuple[float, ...]
    mean: float
    std: float
    p_value: float
    n_pairs: int

    @property
    def mean_pct(self) -> float:
        return 100 * self.mean

    @property
    def std_pct(self) -> float:
        return 100 * self.std

    def __str__(self) -> str:
        return f"{self.mean_pct:+.2f} ± {self.std_pct:.2f}% (p={self.p_value:.3g}, n={len(self.deltas)} seeds)"


def summarize_deltas(
    scores_by_seed: Sequence[Mapping[str, float]], baseline_by_seed: Sequence[Mapping[str, float]]
) -> DeltaSummary:
    """Deltas per seed, their mean ± std, and a two-sided paired t-test (scipy ``ttest_rel``).

    The test pairs every (seed, benchmark) score of the pool's models with the baseline's score
    for the same seed and benchmark; with fewer than 2 pairs, or no variation in the
    differences, the p-value is NaN (undefined) or 0/1 as scipy defines it.
    """
    if len(scores_by_seed) != len(baseline_by_seed) or not scores_by_seed:
        raise ValueError(f"need one baseline per seed: {len(scores_by_seed)} vs {len(baseline_by_seed)}")
    deltas = [relative_delta(s, b) for s, b in zip(scores_by_seed, baseline_by_seed)]
    pool = [s[k] for s in scores_by_seed for k in sorted(s)]
    base = [b[k] for b in baseline_by_seed for k in sorted(b)]
    p_value = float("nan")
    if len(pool) >= 2:
        diffs = np.subtract(pool, base)
        if np.ptp(diffs) == 0:
            p_value = 1.0 if diffs[0] == 0 else 0.0
        else:
            p_value = float(scistats.ttest_rel(pool, base).pvalue)
    std = float(np.std(deltas, ddof=1)) if len(deltas) > 1 else 0.0
    return DeltaSummary(tuple(deltas), float(np.mean(deltas)), std, p_value, len(pool))
