"""The relative delta (paper Eq. 3) on hand-computed numbers."""

from __future__ import annotations

import math

import pytest

from mlsandbox.delta import relative_delta, summarize_deltas


def test_eq3_on_hand_computed_scores() -> None:
    # (0.55 - 0.50) + (0.40 - 0.40) + (0.33 - 0.30) = 0.08 over 0.50 + 0.40 + 0.30 = 1.20
    scores = {"wiki": 0.55, "news": 0.40, "tech": 0.33}
    baseline = {"wiki": 0.50, "news": 0.40, "tech": 0.30}
    assert relative_delta(scores, baseline) == pytest.approx(0.08 / 1.20)


def test_a_worse_pool_has_a_negative_delta_and_equal_scores_zero() -> None:
    assert relative_delta({"a": 0.4}, {"a": 0.5}) == pytest.approx(-0.2)
    assert relative_delta({"a": 0.5, "b": 1.0}, {"a": 0.5, "b": 1.0}) == 0.0


def test_scores_must_be_positive_and_benchmarks_must_match() -> None:
    with pytest.raises(ValueError, match="positive"):
        relative_delta({"a": -1.9}, {"a": -2.0})  # -bpb would flip the sign
    with pytest.raises(ValueError, match="benchmarks differ"):
        relative_delta({"a": 1.0}, {"b": 1.0})


def test_mean_std_over_seeds_and_the_paired_test() -> None:
    pool = [{"a": 0.55, "b": 0.33}, {"a": 0.56, "b": 0.34}]
    base = [{"a": 0.50, "b": 0.30}, {"a": 0.50, "b": 0.31}]
    summary = summarize_deltas(pool, base)
    d0, d1 = (0.05 + 0.03) / 0.80, (0.06 + 0.03) / 0.81
    assert summary.deltas == pytest.approx((d0, d1))
    assert summary.mean == pytest.approx((d0 + d1) / 2)
    assert summary.std == pytest.approx(abs(d0 - d1) / math.sqrt(2))
    # paired differences 0.05, 0.03, 0.06, 0.03: mean 0.0425, sd 0.015, t = 0.0425 / (0.015 / 2)
    from scipy import stats

    t = 0.0425 / (0.015 / 2)
    assert summary.p_value == pytest.approx(2 * stats.t.sf(t, df=3), rel=1e-6)
    assert summary.n_pairs == 4
    assert str(summary) == "+10.56 ± 0.79% (p=0.0109, n=2 seeds)"


def test_one_seed_has_zero_std() -> None:
    summary = summarize_deltas([{"a": 0.6}], [{"a": 0.5}])
    assert summary.std == 0.0 and summary.mean == pytest.approx(0.2) and math.isnan(summary.p_value)
