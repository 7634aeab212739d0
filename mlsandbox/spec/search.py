"""The ``search:`` section of the spec: which thresholds, duplication rates and OPs a study explores.

Per stat: which bounds are searched (``min``, ``max`` or both), on which scale (a stat ``value``,
or a ``percentile`` of the stat's distribution), whether the OP may be left out; and the range of
the repeat (duplication) rate. Whether each named OP and stat exists is checked against the OP
registry by :func:`mlsandbox.project.load_project`; this module imports no OP.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from mlsandbox.errors import KeyValueError
from mlsandbox.spec._base import MAX_REPEAT, Seed, StrictModel

#: The most trials a study may be asked for (``search.n_trials``, ``--n-trials``).
MAX_TRIALS = 100_000

Bound = Literal["min", "max", "both"]
Scale = Literal["percentile", "value"]
Objective = Literal["delta", "size"]


def _delta_only() -> list[Objective]:
    return ["delta"]


def _check_range(name: str, r: tuple[float, float] | None, scale: Scale | None = None) -> None:
    if r is None:
        return
    lo, hi = r
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo >= hi:
        raise KeyValueError(name, list(r), "must be [low, high] with finite low < high")
    if scale == "percentile" and not 0 <= lo < hi <= 100:
        raise KeyValueError(name, list(r), "is in percentiles: it must satisfy 0 <= low < high <= 100")


class ThresholdSearch(StrictModel):
    """The searched bounds of one stat.

    ``min_range``/``max_range`` are where the lower/upper bound is searched, in the ``scale``'s
    unit. Defaults: the whole range (0-100 for percentiles, the observed min-max of the stat for
    values) for a single bound; with ``bounds: both``, up to the median for ``min`` and from it
    for ``max`` (stretched to meet the other side's given range), so that every pool holds the
    stat's median. Ranges may overlap (e.g. both
    ``[0, 100]``, to reach a low or high tercile): a trial's two draws are sorted.
    """

    op: str = Field(..., description="the OP's Data-Juicer name")
    stat: str | None = Field(default=None, description="stat key of the OP; default: its split stat")
    bounds: Bound = "both"
    scale: Scale = "percentile"
    min_range: tuple[float, float] | None = None
    max_range: tuple[float, float] | None = None
    optional: bool = Field(default=False, description="also search whether the OP's condition is used at all")

    @model_validator(mode="after")
    def _check(self) -> ThresholdSearch:
        if self.bounds == "min" and self.max_range is not None:
            raise ValueError(f"{self.op}: max_range is set but bounds is 'min'")
        if self.bounds == "max" and self.min_range is not None:
            raise ValueError(f"{self.op}: min_range is set but bounds is 'max'")
        _check_range("min_range", self.min_range, self.scale)
        _check_range("max_range", self.max_range, self.scale)
        return self


class WarmStart(StrictModel):
    """Recipes enqueued as the study's first trials."""

    workflow: bool = Field(default=True, description="the best recipe of the latest finished workflow run")
    ksigma: bool = Field(default=True, description="the k-sigma recipe (refine.ksigma) of the searched stats")


class SearchSpec(StrictModel):
    """An Optuna search over recipes: thresholds, OP use and the duplication rate.

    The proxy model, seeds and benchmarks are the spec's own and stay fixed across trials, so
    trials differ only in their data and are comparable; ``budget`` also fixes the number of
    samples a model sees.
    """

    ops: list[ThresholdSearch] | None = Field(
        default=None,
        min_length=1,
        description="searched stats; default: the split stat of every numeric OP of the spec",
    )
    bounds: Bound = Field(default="both", description="bounds searched for the default ops")
    scale: Scale = Field(default="percentile", description="scale of the default ops' bounds")
    optional: bool = Field(default=False, description="whether the default ops may be left out")
    repeat: tuple[int, int] = Field(default=(1, 1), description="range of the repeat (duplication) rate")
    budget: int | None = Field(
        default=None,
        ge=1,
        description="samples seen per training (pool size x repeat), fixed; default: the pool as selected",
    )
    n_trials: int = Field(default=20, ge=1, le=MAX_TRIALS)
    sampler: Literal["tpe", "random", "gp", "cmaes", "nsga2"] = "tpe"
    seed: Seed = Field(default=0, description="sampler seed (offset per worker and on resume)")
    pruner: Literal["median", "percentile", "hyperband", "none"] = "median"
    objectives: list[Objective] = Field(
        default_factory=_delta_only, min_length=1,
        description="'delta' (maximize the delta over random), or [delta, size] (also maximize the pool size)",
    )
    min_pool_size: int = Field(default=50, ge=1, description="smaller pools are pruned without training")
    warm_start: WarmStart = Field(default_factory=WarmStart)

    @field_validator("objectives", mode="before")
    @classmethod
    def _one_or_list(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("objectives")
    @classmethod
    def _delta_first(cls, v: list[str]) -> list[str]:
        if v[0] != "delta" or len(set(v)) != len(v):
            raise ValueError("objectives must be 'delta' or [delta, size]")
        return v

    @field_validator("repeat")
    @classmethod
    def _repeat_range(cls, v: tuple[int, int]) -> tuple[int, int]:
        if not 1 <= v[0] <= v[1] <= MAX_REPEAT:
            raise ValueError(f"repeat must be [low, high] with 1 <= low <= high <= {MAX_REPEAT}")
        return v

    @model_validator(mode="after")
    def _sampler_fits(self) -> SearchSpec:
        if self.sampler == "cmaes" and self.multi_objective:
            raise ValueError("sampler 'cmaes' is single-objective; use 'nsga2', 'tpe', 'gp' or 'random' for [delta, size]")
        return self

    @model_validator(mode="after")
    def _budget_fits_min_pool(self) -> SearchSpec:
        """A trial trains budget // repeat samples and prunes a pool under min_pool_size: a budget that
        leaves even the lowest repeat's pool under it would prune every trial, and finish as a success."""
        if self.budget is not None and (largest := self.budget // self.repeat[0]) < self.min_pool_size:
            per = "" if self.repeat[0] == 1 else f" (budget // repeat's low end {self.repeat[0]} = {largest})"
            raise KeyValueError("budget", self.budget, f"leaves every trial a pool of at most {largest} samples{per}, "
                                f"below min_pool_size={self.min_pool_size}: every trial would be pruned")
        return self

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1
