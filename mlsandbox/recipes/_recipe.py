"""The recipe model: per-OP stat conditions, and the pool a recipe selects from a stats table."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ConfigDict, Field, model_validator

from mlsandbox.errors import PoolError, RecipeError
from mlsandbox.ops import Op, op_class
from mlsandbox.pools import Pool, RecipeOrigin, filter_pool, make_pool, subsample
from mlsandbox.spec import MAX_REPEAT, Checked, Seed
from mlsandbox.stats import StatsTable, cache_key, statistic_identity

#: Per stat key: the (inclusive) lower and upper bound, None where unbounded.
Bounds = dict[str, tuple[float | None, float | None]]


class Condition(Checked):
    """Keep samples whose ``stat`` of ``op`` lies in ``[min, max]`` (or is one of ``values``).

    ``stat`` defaults to the OP's split stat. Numeric stats take ``min``/``max`` (inclusive, as
    in Data-Juicer; None = unbounded); categorical stats such as ``lang`` take ``values``.
    ``params`` are the OP's params (they change what the stat means), stored without defaults
    so that equal OPs compare and digest equal.
    """

    model_config = ConfigDict(extra="forbid", frozen=False)

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
        self.params = op.params.stat_params(exclude_defaults=True)  # where it ran is no condition
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
        lo = "-inf" if self.min is None else _exact(self.min)
        hi = "inf" if self.max is None else _exact(self.max)
        return f"{self.label} in [{lo}, {hi}]"


def _exact(value: float) -> str:
    """A bound as short as it reads (``5``, ``0.25``) and never rounded: a candidate run's params
    show it, and a bound copied from there must select the pool that was measured."""
    short = f"{value:g}"
    return short if float(short) == value else repr(value)


#: The id-list fields: left out of the digest while unset, so threshold recipes keep their digest.
_ID_FIELDS = ("ids", "id_repeats", "ids_digest")


class MeasuredPool(Checked):
    """The pool a recipe selected where it was measured: on that dataset it must select it again.

    Conditions name OPs, not their code: an upgrade that changes a statistic's definition or a
    param's default would silently select other samples than those the measurement was of.
    """

    model_config = ConfigDict(extra="forbid")

    dataset_digest: str = Field(min_length=1)
    pool_digest: str = Field(min_length=1)
    samples: int = Field(ge=1, description="samples trained, repeats counted")
    run_id: str = Field(default="", description="the run that measured the pool")
    statistics: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="per OP of the conditions, the definition its thresholds were measured on")

    @classmethod
    def of(cls, pool: Pool, run_id: str = "", statistics: dict[str, dict[str, Any]] | None = None) -> MeasuredPool:
        return cls(dataset_digest=pool.dataset_digest, pool_digest=pool.digest, samples=pool.size, run_id=run_id,
                   statistics=statistics or {})


def ids_digest(ids: list[str], repeats: list[int]) -> str:
    """sha256 of the ids and their repeat counts (canonical JSON), 16 hex chars."""
    payload = json.dumps([ids, repeats], separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


class Recipe(Checked):
    """Conditions (intersected; none = all data), then a seeded subsample, then ``repeat`` copies.

    An *id-list recipe* names its samples instead (``ids``, each seen ``id_repeats`` times, then
    ``repeat`` times): the exact pool of a selection no thresholds can write, such as a
    duplication-study fill. It has no conditions and no subsample; ``ids_digest`` (filled in
    when left out) guards the list against edits.
    """

    model_config = ConfigDict(extra="forbid", frozen=False)

    name: str = Field(min_length=1)
    description: str = ""
    conditions: list[Condition] = Field(default_factory=list)
    sample_size: int | None = Field(default=None, ge=1, description="seeded subsample of the selection")
    seed: Seed = 42
    repeat: int = Field(default=1, ge=1, le=MAX_REPEAT, description="times each selected sample is seen (duplication rate)")
    source: str = Field(default="", description="provenance, e.g. 'k-sigma k=2' or 'top-3 intersection'")
    ids: list[str] | None = Field(default=None, description="an id-list recipe: exactly these samples, by id")
    id_repeats: list[int] | None = Field(default=None, description="times each of ids is seen (default 1 each)")
    ids_digest: str | None = Field(default=None, description="digest of ids and id_repeats (checked on load)")
    measured: MeasuredPool | None = Field(default=None, description="the pool it selected where it was measured")

    @model_validator(mode="after")
    def _check_ids(self) -> Recipe:
        if self.ids is None:
            if self.id_repeats is not None or self.ids_digest is not None:
                raise ValueError("id_repeats and ids_digest need ids")
            return self
        if self.conditions or self.sample_size is not None:
            raise ValueError("an id-list recipe (ids) takes no conditions and no sample_size")
        if not self.ids:
            raise ValueError("ids is empty, so nothing would be kept")
        if len(set(self.ids)) != len(self.ids):
            raise ValueError("ids lists a sample twice; give its count in id_repeats")
        repeats = self.id_repeats if self.id_repeats is not None else [1] * len(self.ids)
        if len(repeats) != len(self.ids) or any(not 1 <= r <= MAX_REPEAT for r in repeats):
            raise ValueError(f"id_repeats needs one count from 1 to {MAX_REPEAT} per id ({len(self.ids)} ids)")
        digest = ids_digest(self.ids, repeats)
        if self.ids_digest is None:
            self.ids_digest = digest
        elif self.ids_digest != digest:
            raise ValueError(f"ids_digest {self.ids_digest} does not match its ids and id_repeats ({digest})")
        return self

    def digest(self) -> str:
        """sha256 of the recipe's canonical JSON (sorted keys, no whitespace), 16 hex chars: the
        selection it describes, not where it was measured."""
        unset = {k for k in _ID_FIELDS if getattr(self, k) is None} | {"measured"}
        payload = json.dumps(self.model_dump(mode="json", exclude=unset), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def measured_as(self, pool: Pool, stats: StatsTable, run_id: str = "") -> Recipe:
        """This recipe, recording ``pool`` as the one it selected from ``stats`` when ``run_id`` measured
        it, and the definition of each statistic its conditions bound."""
        statistics = {c.op: statistic_identity(stats.op(c.op)) for c in self.conditions}
        return self.model_copy(update={"measured": MeasuredPool.of(pool, run_id, statistics)})

    def select(self, stats: StatsTable) -> Pool:
        """The pool this recipe keeps from ``stats``; :class:`PoolError` if nothing or too little,
        :class:`RecipeError` if on another dataset ``stats`` define a statistic otherwise than where it
        was measured, or if on the dataset it was measured on it no longer selects that pool."""
        self.check_statistics(stats.dataset_digest, stats.ops)
        pool = self._select(stats)
        self._check_measured(pool)
        return pool

    def check_statistics(self, dataset_digest: str, ops: Sequence[Op]) -> None:
        """On another dataset (the full corpus), an id list is refused (an id may name another sample
        there), and thresholds must bound the statistic they were measured on: another version of the
        OP, a changed default, a replaced model file or another version of its word list would apply
        them to other values. On the measured dataset the selection itself is checked
        (:meth:`_check_measured`): the same pool is what was measured. ``ops`` are those that compute
        (or computed) the dataset's stats: known before the stats are."""
        measured = self.measured
        if measured is None or measured.dataset_digest == dataset_digest:
            return
        if self.ids is not None:
            raise RecipeError(
                f"recipe {self.name!r} is an id list measured on another dataset ({measured.dataset_digest}): here "
                "its ids may name other samples; apply it to that dataset, or delete its 'measured' entry to take "
                "these ids from this one")
        by_name = {op.name: op for op in ops}
        for op_name in sorted({c.op for c in self.conditions} & measured.statistics.keys() & by_name.keys()):
            then, now = measured.statistics[op_name], statistic_identity(by_name[op_name])  # an OP not here: see _select
            if now != then:
                changed = "; ".join(f"{k}: {then.get(k, 'none')} then, {now.get(k, 'none')} here"
                                    for k in sorted(now.keys() | then.keys()) if now.get(k) != then.get(k))
                raise RecipeError(
                    f"recipe {self.name!r}: its thresholds on {op_name} were measured on another definition of its "
                    f"statistic ({changed}); measure the recipe again on these data, or delete its 'measured' "
                    "entry to apply them to this one")

    def _check_measured(self, pool: Pool) -> None:
        measured = self.measured
        if measured is None or measured.dataset_digest != pool.dataset_digest or measured.pool_digest == pool.digest:
            return
        where = f" by run {measured.run_id}" if measured.run_id else ""
        raise RecipeError(
            f"recipe {self.name!r} selected pool {measured.pool_digest} ({measured.samples} samples) of this dataset "
            f"when it was measured{where}, but now selects pool {pool.digest} ({pool.size} samples): it was edited "
            "(its conditions, repeat, sample_size or seed), or an OP's statistic or a param's default has changed "
            "since; measure it again, or delete "
            "its 'measured' entry to use the selection it now makes")

    def _select(self, stats: StatsTable) -> Pool:
        origin = RecipeOrigin(self.name, self.digest(), self.sample_size, self.seed, self.repeat)
        if self.ids is not None:
            rows, repeats = self._rows_by_id(stats)
            return Pool(self.name, stats.dataset_digest, rows, repeats * self.repeat, origin)
        bounds, allowed = _merge_conditions(self.conditions, stats, self.name)
        try:
            pool = filter_pool(stats, bounds, self.name)
            if allowed:
                keep = np.ones(pool.unique_size, dtype=bool)
                for key, values in allowed.items():
                    keep &= np.isin(stats.stat(key)[pool.rows], list(values))
                pool = make_pool(self.name, stats, pool.rows[keep], pool.origin)
        except PoolError:
            raise PoolError(f"recipe {self.name!r}: empty selection, no sample passes {self._described()}") from None
        if self.sample_size is not None:
            if self.sample_size > pool.unique_size:
                raise PoolError(f"recipe {self.name!r}: sample_size={self.sample_size} but only {pool.unique_size} "
                                f"samples pass {self._described()}")
            pool = make_pool(self.name, stats, subsample(pool.rows, self.sample_size, self.seed), pool.origin)
        return Pool(self.name, pool.dataset_digest, pool.rows, pool.repeats * self.repeat, origin)

    def _described(self) -> str:
        return "; ".join(c.describe() for c in self.conditions)

    def _rows_by_id(self, stats: StatsTable) -> tuple[np.ndarray, np.ndarray]:
        assert self.ids is not None
        index = {str(x): i for i, x in enumerate(stats.ids)}
        missing = [x for x in self.ids if x not in index]
        if missing:
            shown = ", ".join(repr(x) for x in missing[:5]) + (" ..." if len(missing) > 5 else "")
            raise PoolError(f"recipe {self.name!r}: {len(missing)} of its {len(self.ids)} ids are not in the "
                            f"stats table ({shown}); an id-list recipe applies to its own dataset only")
        rows = np.array([index[x] for x in self.ids], dtype=np.int64)
        repeats = np.array(self.id_repeats if self.id_repeats is not None else [1] * len(rows), dtype=np.int64)
        order = np.argsort(rows)
        return rows[order], repeats[order]

    @classmethod
    def of_pool(cls, pool: Pool, stats: StatsTable, name: str, source: str = "") -> Recipe:
        """The id-list recipe of a pool: its samples by id and their repeat counts, exactly."""
        return cls.of_rows(stats, pool.rows, name, pool.repeats, source)

    @classmethod
    def of_rows(cls, stats: StatsTable, rows: np.ndarray, name: str, repeats: np.ndarray | None = None,
                source: str = "") -> Recipe:
        """The id-list recipe of rows of the stats table (each once, unless ``repeats`` says otherwise)."""
        ids = [str(x) for x in stats.ids[rows]]
        counts = None if repeats is None or set(repeats.tolist()) <= {1} else [int(r) for r in repeats]
        return cls(name=name, ids=ids, id_repeats=counts, source=source)


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
        if not _same_statistic(op, c):
            raise RecipeError(
                f"recipe {name!r}, condition {c.label}: bounds {c.op} with {op_class(c.op)(**c.params).params.stat_params()}"
                f"{'' if c.params else ' (its defaults)'}, but the stats table computed it with {op.params.stat_params()}"
            )
        assert c.stat is not None  # filled in by validation
        numeric = pd.api.types.is_numeric_dtype(stats.frame[c.stat])
        if c.values is not None:
            if numeric:
                raise RecipeError(f"recipe {name!r}, condition {c.label}: {c.stat} is numeric; use min/max, not values")
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


def _same_statistic(op: Op, condition: Condition) -> bool:
    """Whether the table's ``op`` computed the statistic ``condition`` means: the same params, or
    the same stats-cache key (a local file named by another spelling is the same file)."""
    if op.params.stat_params(exclude_defaults=True) == condition.params:
        return True
    return cache_key(op) == cache_key(op_class(condition.op)(**condition.params))
