"""The relative change of a pool's model over the random baseline (paper Eq. 3), with statistics.

``delta = sum_i(s_i - s'_i) / sum_i(s'_i)`` over benchmarks ``i``, where ``s`` are the scores of
the model trained on the pool and ``s'`` those of the model trained on the equal-size random
pool of the same seed. Scores must be positive and higher-is-better (``1 / bits-per-byte``):
with a negative denominator the sign of the delta would flip.

The unit of the statistics is the seed: each seed gives one delta (its own training run, and its
own random control), so the spread over seeds holds both the training noise and the noise of
which documents the control drew. The pool itself is the same documents on every seed: one draw.
Were its statistic uninformative, that draw would be as lucky or unlucky as any random pool of
its size, and no number of seeds averages its luck away (a seed-independent model trains the
same pool cell on every seed, so only the controls vary). So the test asks whether the pool
stands out from random pools, not whether it differs from their mean: with ``n`` seeds of spread
``sd``, the standard error of the mean delta is ``sd * sqrt(1 + 1/n)`` (a prediction interval for
one more random pool), not ``sd / sqrt(n)``. For a seed-independent model this is exact under
that null; for a seed-dependent one it is conservative (the spread also holds training noise).
Across seeds: the mean, a 95% t-interval with that standard error, and a two-sided t-test of the
mean against 0 (df = n - 1). :func:`holm` adjusts the p-values of a step's pools for multiple
comparisons (Holm's step-down method, which controls the family-wise error rate).

A pool whose seeds are raced (another seed while its interval still holds 0) is tested after
every seed from the race's minimum to its maximum: ``looks`` tests. Stopping when one of them
succeeds would make a 5% test reject a null pool about twice as often, so each of them is held
to ``ALPHA / looks`` (Bonferroni over the looks): the p-value is multiplied by ``looks`` and the
interval widened to ``1 - ALPHA / looks``. Whenever the race stops, the pool's p-value and
interval then keep their 5% error rate.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as scistats

#: The significance level of the flags (on the adjusted p-value); the interval is at 1 - ALPHA.
ALPHA = 0.05
NAN = float("nan")
#: Whose Holm family refine's top single-OP rows (the pyramid's 1-OP level) belong to: refine carries the
#: probe's numbers for them, so a note on refine's p_adjusted must not claim refine's family for them.
CARRIED_FAMILY = "refine's top single-OP rows keep the probe's, corrected across the probe's pools"


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
    delta = sum(scores[k] - baseline[k] for k in keys) / sum(baseline[k] for k in keys)
    if not math.isfinite(delta):  # scores of absurd magnitudes: no delta, rather than an infinite one
        raise ValueError(f"the relative change of {scores} over {baseline} is not a finite number")
    return delta


@dataclass(frozen=True)
class DeltaSummary:
    """A pool's deltas over seeds: mean ± std (ddof=1), a 95% t-interval and a t-test against 0,
    both corrected for the ``looks`` a seed race took at them (module docstring).

    ``ci_low``/``ci_high`` and ``p_value`` are NaN (undefined) with a single seed. ``p_adjusted``
    is the Holm-adjusted p-value across the pools of one step; NaN until :func:`adjust_summaries`
    sets it.
    """

    deltas: tuple[float, ...]
    mean: float
    std: float
    p_value: float
    ci_low: float = NAN
    ci_high: float = NAN
    p_adjusted: float = NAN
    looks: int = 1

    @property
    def seeds(self) -> int:
        return len(self.deltas)

    @property
    def mean_pct(self) -> float:
        return 100 * self.mean

    @property
    def std_pct(self) -> float:
        return 100 * self.std

    @property
    def ci_low_pct(self) -> float:
        return 100 * self.ci_low

    @property
    def ci_high_pct(self) -> float:
        return 100 * self.ci_high

    @property
    def significant(self) -> bool:
        """Above the control after the correction: adjusted p < 0.05 and a positive mean."""
        return self.mean > 0 and self.p_adjusted < ALPHA

    def interval_text(self) -> str:
        """``[+0.12, +0.80]%``, or ``n/a`` where the interval is undefined (one seed)."""
        if not (math.isfinite(self.ci_low) and math.isfinite(self.ci_high)):
            return "n/a"
        return f"[{self.ci_low_pct:+.2f}, {self.ci_high_pct:+.2f}]%"

    def __str__(self) -> str:
        raced = f", corrected for {self.looks} looks" if self.looks > 1 else ""
        spread = f"{self.std_pct:.2f}" if math.isfinite(self.std_pct) else "n/a"
        return (f"{self.mean_pct:+.2f} ± {spread}% (95% CI {self.interval_text()}, p={_fmt_p(self.p_value)}, "
                f"Holm-adjusted p={_fmt_p(self.p_adjusted)}, n={self.seeds} seeds{raced})")


@dataclass(frozen=True)
class Confirmation:
    """A chosen pool's delta measured again on ``seeds`` fresh seeds: one hypothesis fixed in
    advance, one plain test (no correction). ``pct`` is NaN when every cell failed, ``p`` (and
    the interval) when the seeds gave no spread."""

    seeds: int
    pct: float = NAN
    ci_low_pct: float = NAN
    ci_high_pct: float = NAN
    p: float = NAN

    @classmethod
    def of(cls, summary: DeltaSummary | None, seeds: int) -> Confirmation:
        """From the summary of the fresh seeds' deltas (None: every cell failed)."""
        if summary is None:
            return cls(seeds)
        return cls(summary.seeds, summary.mean_pct, summary.ci_low_pct, summary.ci_high_pct, summary.p_value)

    @property
    def held(self) -> bool:
        """Above the random control again: a positive delta with p < 0.05."""
        return self.pct > 0 and self.p < ALPHA

    def text(self) -> str:
        """What the fresh seeds gave, and whether the win held (one sentence, no final period)."""
        if not math.isfinite(self.pct):
            return (f"Its measurement on {self.seeds} fresh seeds failed (see the failed cells in "
                    "confirm/cells.json), so it is not confirmed")
        measured = (f"Measured again on {self.seeds} fresh seeds, against random controls that took no "
                    f"part in choosing it: {self.pct:+.2f}%")
        if not math.isfinite(self.p):
            return f"{measured}, without a spread over those seeds: no test, so it is not confirmed"
        measured += f" (95% interval [{self.ci_low_pct:+.2f}, {self.ci_high_pct:+.2f}]%, p = {self.p:.3g}, one test)"
        if self.held:
            return (f"{measured}: confirmed (its documents are the same ones, so whatever luck of the draw "
                    "helped pick them is still in this delta)")
        if self.p < ALPHA:
            return f"{measured}: not confirmed; on fresh seeds it is worse than the random control"
        return (f"{measured}: not confirmed; on fresh seeds it cannot be told from the random control (its first "
                "delta may owe to its being picked as the best, or these seeds are too few to show it)")


def _fmt_p(p: float) -> str:
    return f"{p:.3g}" if math.isfinite(p) else "n/a"


def claim_words(ci_low_pct: float, ci_high_pct: float, p_adjusted: float) -> str:
    """``95% interval [+0.12, +0.80]%, Holm-adjusted p = 0.02``: what comes with a delta in prose."""
    return f"95% interval [{ci_low_pct:+.2f}, {ci_high_pct:+.2f}]%, Holm-adjusted p = {p_adjusted:.3g}"


#: What a comparison's best delta that beat its control after the correction is called.
WIN_TEXT = f"It beat the random control after Holm's correction (adjusted p < {ALPHA:g})."


def not_a_win_reason(p_adjusted: float) -> str:
    """Why the best delta of a comparison is no win (it did not beat the control after Holm's correction)."""
    if not math.isfinite(p_adjusted):
        return ("without a spread over seeds (one seed, or seeds that all gave the same delta) there is no "
                "test, so nothing can be called better than the control")
    if p_adjusted < ALPHA:
        return "it is worse than the random control"
    return "it is not distinguishable from the random control with these seeds"


def summarize_deltas(
    scores_by_seed: Sequence[Mapping[str, float]], baseline_by_seed: Sequence[Mapping[str, float]], looks: int = 1,
    pool_per_seed: bool = False,
) -> DeltaSummary:
    """Eq. 3 per seed, then across seeds: mean ± std, a 95% t-interval, a two-sided t-test against 0
    (``looks`` > 1: corrected for a seed race's repeated tests, see the module docstring).

    The seed is the unit: the benchmarks of one seed are aggregated by Eq. 3 into one delta, and
    the test is a t-test of the per-seed deltas (df = seeds - 1) whose standard error counts the
    pool as one draw, ``std * sqrt(1 + 1/n)`` (module docstring). ``pool_per_seed``: every seed
    drew its own pool too (as the sensitivity benchmarks do), so the seeds average the pool's luck
    and the one-sample ``std / sqrt(n)`` applies. With one seed the std, interval and p-value are
    NaN (undefined), and the interval and p-value are when the seeds' deltas do not vary beyond
    rounding: then nothing varied between the seeds (a seed-independent model against a control
    that is the whole dataset), so they are one measurement repeated, not several.
    """
    if looks < 1:
        raise ValueError(f"looks must be at least 1, got {looks}")
    if len(scores_by_seed) != len(baseline_by_seed) or not scores_by_seed:
        raise ValueError(f"need one baseline per seed: {len(scores_by_seed)} vs {len(baseline_by_seed)}")
    deltas = np.array([relative_delta(s, b) for s, b in zip(scores_by_seed, baseline_by_seed)], dtype=float)
    n = len(deltas)
    mean = float(np.mean(deltas))
    std = float(np.std(deltas, ddof=1)) if n > 1 else NAN
    if n < 2 or std <= _ROUNDING * max(abs(mean), 1e-6):
        return DeltaSummary(tuple(deltas.tolist()), mean, NAN if n < 2 else 0.0, NAN, looks=looks)
    se = std * math.sqrt(1 / n + (0.0 if pool_per_seed else 1.0))
    half = float(scistats.t.ppf(1 - ALPHA / (2 * looks), df=n - 1)) * se
    p_value = min(1.0, looks * 2 * float(scistats.t.sf(abs(mean) / se, df=n - 1)))
    return DeltaSummary(tuple(deltas.tolist()), mean, std, p_value, mean - half, mean + half, looks=looks)


#: A spread of the deltas below this share of their mean is floating-point rounding, not a
#: measured variation (e.g. a seed-independent trainer whose sums are not bit-exact).
_ROUNDING = 1e-9


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of a family of p-values, in the given order.

    With the ``m`` finite p-values sorted ascending, ``p_(i)`` becomes
    ``max_{j <= i} min(1, (m - j + 1) * p_(j))``; rejecting where the adjusted value is below
    alpha keeps the family-wise error rate at alpha under any dependence. NaN stays NaN and does
    not count in ``m``.
    """
    values = np.asarray(p_values, dtype=float)
    out = np.full(len(values), np.nan)
    finite = np.flatnonzero(np.isfinite(values))
    m = len(finite)
    order = finite[np.argsort(values[finite], kind="stable")]
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * float(values[i])))
        out[i] = running
    return out.tolist()


def adjust_summaries(summaries: Sequence[DeltaSummary | None]) -> list[DeltaSummary | None]:
    """The summaries with ``p_adjusted`` set by :func:`holm` across all of them (None stays None)."""
    adjusted = holm([s.p_value if s is not None else NAN for s in summaries])
    return [None if s is None else dataclasses.replace(s, p_adjusted=p) for s, p in zip(summaries, adjusted)]
