"""The relative delta (paper Eq. 3) and its statistics over seeds, on hand-computed numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from mlsandbox.delta import adjust_summaries, holm, relative_delta, summarize_deltas


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
    with pytest.raises(ValueError, match="is not a finite number"):
        relative_delta({"a": 1.0, "b": 1.0}, {"a": 5e-324, "b": 5e-324})  # an infinite delta, never a value


def test_the_seed_is_the_unit_benchmarks_are_aggregated_by_eq3_first() -> None:
    pool = [{"a": 0.55, "b": 0.33}, {"a": 0.56, "b": 0.34}]
    base = [{"a": 0.50, "b": 0.30}, {"a": 0.50, "b": 0.31}]
    summary = summarize_deltas(pool, base)
    d0, d1 = (0.05 + 0.03) / 0.80, (0.06 + 0.03) / 0.81
    assert summary.deltas == pytest.approx((d0, d1)) and summary.seeds == 2
    assert summary.mean == pytest.approx((d0 + d1) / 2)
    assert summary.std == pytest.approx(abs(d0 - d1) / math.sqrt(2))
    # t-test of the 2 per-seed deltas against 0: df = 1, not the 3 of (seed x benchmark) pairs; the
    # pool is one draw, so its standard error is sd * sqrt(1 + 1/2)
    t = summary.mean / (summary.std * math.sqrt(1 + 1 / 2))
    assert summary.p_value == pytest.approx(2 * stats.t.sf(t, df=1), rel=1e-9)
    assert str(summary) == ("+10.56 ± 0.79% (95% CI [-1.67, +22.78]%, p=0.0579, Holm-adjusted p=n/a, "
                            "n=2 seeds)")


def test_the_interval_and_p_value_over_three_seeds_by_hand() -> None:
    # deltas 1%, 3%, 5%: mean 3%, sd 2%, standard error 2% * sqrt(1 + 1/3) (the pool is one draw),
    # t = 1.299 with df = 2
    summary = summarize_deltas([{"a": 1.01}, {"a": 1.03}, {"a": 1.05}], [{"a": 1.0}] * 3)
    assert summary.mean == pytest.approx(0.03) and summary.std == pytest.approx(0.02)
    half = 4.302652729911275 * 0.02 * math.sqrt(4 / 3)  # t_{0.975, df=2}
    assert (summary.ci_low, summary.ci_high) == pytest.approx((0.03 - half, 0.03 + half))
    assert (summary.ci_low_pct, summary.ci_high_pct) == pytest.approx((100 * (0.03 - half), 100 * (0.03 + half)))
    assert summary.ci_low < 0 < summary.ci_high  # the interval covers 0 ...
    assert summary.p_value == pytest.approx(0.32352, abs=1e-4)  # ... and the test does not reject
    assert math.isnan(summary.p_adjusted)  # until a step adjusts it


def test_one_seed_has_no_interval_and_no_p_value() -> None:
    summary = summarize_deltas([{"a": 0.6}], [{"a": 0.5}])
    assert math.isnan(summary.std) and summary.mean == pytest.approx(0.2)  # no spread to speak of, not 0
    assert math.isnan(summary.p_value) and math.isnan(summary.ci_low) and math.isnan(summary.ci_high)
    assert summary.interval_text() == "n/a" and "p=n/a" in str(summary) and "± n/a%" in str(summary)


def test_seeds_without_spread_are_one_measurement_not_certainty() -> None:
    # e.g. a seed-independent model against a control that is the whole dataset: every seed repeats
    # the same measurement, so there is no interval and no test, not a p-value of 0
    for scores in ({"a": 0.6}, {"a": 0.5}):
        same = summarize_deltas([scores, scores, scores], [{"a": 0.5}] * 3)
        assert same.seeds == 3 and same.std == 0.0
        assert all(math.isnan(v) for v in (same.ci_low, same.ci_high, same.p_value))
    assert summarize_deltas([{"a": 0.6}] * 2, [{"a": 0.5}] * 2).mean == pytest.approx(0.2)


def test_holm_on_hand_computed_p_values() -> None:
    # sorted: 0.005 x 4 = 0.02; 0.01 x 3 = 0.03; 0.03 x 2 = 0.06; 0.04 x 1 = 0.04 -> kept monotone: 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == [1.0, 1.0]  # capped at 1
    adjusted = holm([0.01, float("nan"), 0.02])  # NaN is not a comparison: m = 2
    assert adjusted[0] == pytest.approx(0.02) and math.isnan(adjusted[1]) and adjusted[2] == pytest.approx(0.02)
    assert holm([]) == [] and holm([0.2]) == [0.2]


def test_adjusting_summaries_sets_p_adjusted_and_keeps_the_rest() -> None:
    a = summarize_deltas([{"a": 1.01}, {"a": 1.03}, {"a": 1.05}], [{"a": 1.0}] * 3)
    b = summarize_deltas([{"a": 1.10}, {"a": 1.11}, {"a": 1.12}], [{"a": 1.0}] * 3)
    out = adjust_summaries([a, None, b])
    assert out[1] is None
    assert [s.p_adjusted for s in (out[0], out[2])] == pytest.approx(holm([a.p_value, b.p_value]))
    assert (out[0].mean, out[0].ci_low, out[0].p_value) == (a.mean, a.ci_low, a.p_value)
    assert out[2].significant and not out[0].significant
    worse = adjust_summaries([summarize_deltas([{"a": 0.90}, {"a": 0.89}, {"a": 0.88}], [{"a": 1.0}] * 3)])[0]
    assert worse.p_adjusted < 0.05 and not worse.significant  # surely worse than the control is no win


def test_a_raced_pool_is_corrected_for_its_looks() -> None:
    # deltas 2%, 3%, 4% tested by a race that may look 4 times: each look is held to 5% / 4
    once = summarize_deltas([{"a": 1.02}, {"a": 1.03}, {"a": 1.04}], [{"a": 1.0}] * 3)
    raced = summarize_deltas([{"a": 1.02}, {"a": 1.03}, {"a": 1.04}], [{"a": 1.0}] * 3, looks=4)
    assert raced.p_value == pytest.approx(4 * once.p_value)
    half = stats.t.ppf(1 - 0.05 / 8, df=2) * 0.01 * math.sqrt(4 / 3)
    assert (raced.ci_low, raced.ci_high) == pytest.approx((0.03 - half, 0.03 + half))
    assert raced.mean == once.mean and str(raced).endswith("n=3 seeds, corrected for 4 looks)")
    big = summarize_deltas([{"a": 1.01}, {"a": 1.02}], [{"a": 1.0}] * 2, looks=64)
    assert big.p_value == 1.0  # capped
    with pytest.raises(ValueError, match="looks"):
        summarize_deltas([{"a": 1.01}], [{"a": 1.0}], looks=0)


def test_seeds_that_each_drew_their_own_pool_get_the_one_sample_t_test() -> None:
    deltas = [1.01, 1.03, 1.05, 1.02]
    summary = summarize_deltas([{"a": d} for d in deltas], [{"a": 1.0}] * 4, pool_per_seed=True)
    assert summary.p_value == pytest.approx(stats.ttest_1samp([d - 1 for d in deltas], 0.0).pvalue)
    half = stats.t.ppf(0.975, df=3) * summary.std / 2
    assert (summary.ci_low, summary.ci_high) == pytest.approx((summary.mean - half, summary.mean + half))


def test_a_random_pool_is_not_flagged_more_often_than_the_test_level() -> None:
    # The null "this OP's stat says nothing": the pool is one random draw of documents, fixed over
    # seeds (a seed-independent model trains it once), and each seed draws a fresh random control.
    # The pool's luck does not average out over seeds, so a test of the mean of the per-seed deltas
    # (sd / sqrt(n)) would flag about 30% of such pools at 5 seeds; counting the pool as one draw
    # keeps it at 5%.
    rng = np.random.default_rng(0)
    for seeds in (3, 8):
        flagged = 0
        for _ in range(1000):
            pool, controls = 1 + rng.normal(0, 0.01), 1 + rng.normal(0, 0.01, seeds)
            flagged += summarize_deltas([{"a": pool}] * seeds, [{"a": c} for c in controls]).p_value < 0.05
        assert flagged / 1000 == pytest.approx(0.05, abs=0.02), seeds


def test_deltas_that_differ_only_by_rounding_are_one_measurement() -> None:
    x = 0.0123456789
    summary = summarize_deltas([{"a": 1 + x}, {"a": 1 + x + 1e-15}, {"a": 1 + x}], [{"a": 1.0}] * 3)
    assert summary.std == 0.0 and math.isnan(summary.p_value) and summary.interval_text() == "n/a"
