"""The design's error rates, simulated: one truly better pool among null pools, no training.

Each repetition simulates a probe of 20 pools x 8 seeds with a seed-independent model (the
n-gram): a pool is one draw of documents, so its scores on two benchmarks carry that draw's luck
on every seed, and each seed's random control (shared by all pools of the seed, as in
``compare_pools``) is a fresh draw. One planted pool is truly better; the other 19 are drawn like
the control (the null "this OP's stat says nothing"). The per-pool summaries are adjusted with
Holm across the step, as a step does.
"""

from __future__ import annotations

import numpy as np

from mlsandbox.delta import ALPHA, DeltaSummary, adjust_summaries, summarize_deltas

POOLS, SEEDS, REPETITIONS = 20, 8, 200
PLANTED = 7
EFFECT = 0.08  # the planted pool's relative gain over the control (8%)
NOISE = 0.01  # relative score noise of a draw of documents


def _step(rng: np.random.Generator) -> list[DeltaSummary]:
    """One simulated step: every pool's summary, Holm-adjusted across the step."""
    bench = np.array([0.8, 1.2])  # true scores of a random pool on two benchmarks (1/bpb)
    controls = [bench * (1 + rng.normal(0, NOISE, 2)) for _ in range(SEEDS)]
    summaries: list[DeltaSummary | None] = []
    for pool in range(POOLS):
        gain = 1 + (EFFECT if pool == PLANTED else 0.0)
        scores = [bench * gain * (1 + rng.normal(0, NOISE, 2))] * SEEDS  # one draw, trained once
        summaries.append(summarize_deltas([dict(zip("ab", s)) for s in scores],
                                          [dict(zip("ab", c)) for c in controls]))
    adjusted = adjust_summaries(summaries)
    return [s for s in adjusted if s is not None]


def _simulate() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per repetition: planted pool flagged, any null pool flagged (adjusted), and (unadjusted)."""
    rng = np.random.default_rng(20240601)
    planted, any_null, any_null_raw = [], [], []
    for _ in range(REPETITIONS):
        step = _step(rng)
        nulls = [s for i, s in enumerate(step) if i != PLANTED]
        planted.append(step[PLANTED].significant)
        any_null.append(any(s.p_adjusted < ALPHA for s in nulls))
        any_null_raw.append(any(s.p_value < ALPHA for s in nulls))
    return np.array(planted), np.array(any_null), np.array(any_null_raw)


def test_holm_finds_the_planted_pool_and_keeps_the_family_wise_error_rate() -> None:
    planted, any_null, any_null_raw = _simulate()
    assert planted.mean() >= 0.9  # power: the truly better pool is flagged in nearly every repetition
    # the family-wise error rate: some null pool flagged in at most ~5% of repetitions
    # (0.05 plus two binomial standard errors of 200 repetitions)
    assert any_null.mean() <= ALPHA + 2 * np.sqrt(ALPHA * (1 - ALPHA) / REPETITIONS)
    # without the correction, 19 null pools at p < 0.05 flag something in most repetitions
    assert any_null_raw.mean() > 0.3


def test_the_simulation_is_deterministic() -> None:
    first, second = _step(np.random.default_rng(3)), _step(np.random.default_rng(3))
    assert [(s.deltas, s.p_adjusted) for s in first] == [(s.deltas, s.p_adjusted) for s in second]
