"""The recipe model: per-OP stat conditions, and the pool a recipe selects from a stats table."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from mlsandbox.errors import PoolError, RecipeError
from mlsandbox.ops import op_class
from mlsandbox.pools import Pool, RecipeOrigin, filter_pool, make_pool
from mlsandbox.spec import Seed
from mlsandbox.stats import StatsTable

#: Per stat key: the (inclusive) lower and upper bound, None where unbounded.
Bounds = dict[str, tuple[float | None, float | None]]


class Condition(BaseModel):
    """Keep samples whose ``stat`` of ``op`` lies in ``[min, max]`` (or is one of ``values``).

    ``stat`` defaults to the OP's split stat. Numeric stats take ``min``/``max`` (inclusive, as
    in Data-Juicer; None = unbounded); categorical stats such as ``lang`` take ``values``.
    ``params`` are the OP's params (they change what the stat means), stored without defaults
    so that equal OPs compare and digest equal.
    """

    model_config = ConfigDict(extra="forbid")

    op: str
    stat: str | None = None
    min: float | None = None
    max: float | None = None
    values: list[str] | None = Field(default=None, description="allowed values of a categorical stat")
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> Condition:
        cls = op_class(self.op)  # ValueError naming the known OPs
        if self.stat is None:
            self.stat = cls.split_stat()
        elif self.stat not in cls.stat_keys:
            raise ValueError(
                f"condition on {self.op}: unknown stat {self.stat!r}; {self.op} has {', '.join(cls.stat_keys)}"
            )
        try:
            op = cls(**self.params)
        except ValueError as err:
            raise ValueError(f"condition on {self.label}: {err}") from None
        self.params = op.params.model_dump(mode="json", exclude_defaults=True)
        for name in ("min", "max"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"condition on {self.label}: {name} must be finite, got {value}")
        if self.values is not None:
            if self.min is not None or self.max is not None:
                raise ValueError(f"condition on {self.label}: give either values or min/max, not both")
            if not self.values:
                raise ValueError(f"condition on {self.label}: values is empty, so nothing would be kept")
        elif self.min is None and self.max is None:
            raise ValueError(f"condition on {self.label}: set min, max (or values for a categorical stat)")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"condition on {self.label}: min {self.min} is above max {self.max}")
        return self

    @property
    def label(self) -> str:
        return f"{self.op}.{self.stat}" if self.stat else self.op

    def describe(self) -> str:
        if self.values is not None:
            return f"{self.label} in {self.values}"
        lo = "-inf" if self.min is None else f"{self.min:g}"
        hi = "inf" if self.max is None else f"{self.max:g}"
        return f"{self.label} in [{lo}, {hi}]"


class Recipe(BaseModel):
    """Conditions (intersected; none = all data), then a seeded subsample, then ``repeat`` copies."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    description: str = ""
    conditions: list[Condition] = Field(default_factory=list)
    sample_size: int | None = Field(default=None, ge=1, description="seeded subsample of the selection")
    seed: Seed = 42
    repeat: int = Field(default=1, ge=1, description="times each selected sample is seen (duplication rate)")
    source: str = Field(default="", description="provenance, e.g. 'k-sigma k=2' or 'top-3 intersection'")

    def digest(self) -> str:
        """sha256 of the recipe's canonical JSON (sorted keys, no whitespace), 16 hex chars."""
        payload = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def select(self, stats: StatsTable) -> Pool:
        """The pool this recipe keeps from ``stats``; :class:`PoolError` if nothing or too little."""
        bounds, allowed = _merge_conditions(self.conditions, stats, self.name)
        try:
            pool = filter_pool(stats, bounds, self.name)
            if allowed:
                keep = np.ones(pool.unique_size, dtype=bool)
                for key, values in allowed.items():
                    keep &= np.isin(stats.stat(key)[pool.rows], list(values))
                pool = make_pool(self.name, stats, pool.rows[keep], pool.origin)
        except PoolError:
            described = "; ".join(c.describe() for c in self.conditions)
            raise PoolError(f"recipe {self.name!r}: empty selection, no sample passes {described}") from None
        if self.sample_size is not None:
            if self.sample_size > pool.unique_size:
                raise PoolError(
                    f"recipe {self.name!r}: sample_size={self.sample_size} but its conditions select "
                    f"only {pool.unique_size} samples"
                )
            rows = np.random.default_rng(self.seed).choice(pool.rows, self.sample_size, replace=False)
            pool = make_pool(self.name, stats, rows, pool.origin)
        origin = RecipeOrigin(self.name, self.digest(), self.sample_size, self.seed, self.repeat)
        return Pool(self.name, pool.dataset_digest, pool.rows, pool.repeats * self.repeat, origin)


def _merge_conditions(
    conditions: Iterable[Condition], stats: StatsTable, name: str
) -> tuple[Bounds, dict[str, set[str]]]:
    """Intersect the conditions per stat, after checking that the table's stats mean the same."""
    bounds: Bounds = {}
    allowed: dict[str, set[str]] = {}
    for c in conditions:
        try:
            op = stats.op(c.op)
        except KeyError as err:
            raise RecipeError(f"recipe {name!r}, condition {c.label}: {err.args[0]}") from None
        if op.params.model_dump(mode="json", exclude_defaults=True) != c.params:
            raise RecipeError(
                f"recipe {name!r}, condition {c.label}: needs params {c.params or 'defaults'} but the stats "
                f"table computed {c.op} with {op.params.model_dump(mode='json')}"
            )
        assert c.stat is not None  # filled in by validation
        numeric = pd.api.types.is_numeric_dtype(stats.frame[c.stat])
        if c.values is not None:
            allowed[c.stat] = allowed[c.stat] & set(c.values) if c.stat in allowed else set(c.values)
            if not allowed[c.stat]:
                raise PoolError(f"recipe {name!r}: the conditions on {c.label} allow no common value")
            continue
        if not numeric:
            raise RecipeError(f"recipe {name!r}, condition {c.label}: {c.stat} is categorical; use values, not min/max")
        lo, hi = bounds.get(c.stat, (None, None))
        lo = c.min if lo is None else lo if c.min is None else max(lo, c.min)
        hi = c.max if hi is None else hi if c.max is None else min(hi, c.max)
        if lo is not None and hi is not None and lo > hi:
            raise PoolError(f"recipe {name!r}: empty selection, the conditions on {c.label} do not overlap")
        bounds[c.stat] = (lo, hi)
    return bounds, allowed
