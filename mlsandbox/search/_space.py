"""The recipe search space: which thresholds, duplication rates and OPs an Optuna study explores.

The ``search:`` section of the experiment spec (:class:`SearchSpec`) names, per stat, which
bounds are searched (``min``, ``max`` or both), on which scale (a stat ``value``, or a
``percentile`` of the stat's distribution in the cached stats table), whether the OP may be left
out, and the range of the repeat (duplication) rate. :func:`build_space` resolves it against a
stats table into fixed dimensions; :func:`suggest_recipe` draws one recipe per trial and
:func:`params_from_recipe` maps an existing recipe back into the space (warm start).

Every dimension is suggested in every trial, even those of an OP a trial leaves out: a fixed
search space is what the GP, CMA-ES and multivariate TPE samplers model jointly; conditional
parameters would fall back to independent sampling.

With ``bounds: both`` a stat's two dimensions (``<stat>.min[_pct]`` and ``<stat>.max[_pct]``)
are drawn by default below and above the stat's median (percentiles 0-50 and 50-100, or the
observed minimum to the median and the median to the maximum), so that every pool holds the
stat's median: with many stats, independent draws over whole ranges would mostly select empty
pools. Ranges may overlap (``min_range: [0, 100]``, ``max_range: [0, 100]`` make any interval of
the stat a point, a low or high tercile included); the two draws are then sorted: the smaller is
the recipe's lower bound, the larger its upper bound. A dimension whose range gives one bound
throughout (a stat that is mostly zeros, whose median is its minimum) is left out where that
bound cuts nothing, so that neither the sampler nor the importances spend themselves on it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import optuna

from mlsandbox.errors import SpecError
from mlsandbox.project import search_stat
from mlsandbox.recipes import Condition, Recipe
from mlsandbox.spec.search import Scale, SearchSpec, ThresholdSearch
from mlsandbox.stats import StatsTable

log = logging.getLogger(__name__)

REPEAT = "repeat"


@dataclass(frozen=True)
class Dimension:
    """One searched bound: an Optuna float parameter ``name`` over ``[low, high]``."""

    name: str
    stat: str
    side: Literal["min", "max"]
    scale: Scale
    low: float
    high: float


@dataclass(frozen=True)
class StatSpace:
    """The searched bounds of one stat, its OP and whether it may be left out."""

    op: str
    params: dict[str, Any]
    stat: str
    dims: tuple[Dimension, ...]
    optional: bool

    @property
    def use_param(self) -> str:
        """The boolean parameter that leaves the OP out (only for an optional stat)."""
        return f"{self.stat}.use"


@dataclass(frozen=True)
class SearchSpace:
    """The resolved, fixed dimensions of a search; built once per study by :func:`build_space`."""

    stats: tuple[StatSpace, ...]
    repeat: tuple[int, int]
    budget: int | None
    seed: int  # subsampling seed of every recipe (the spec's pools.seed)

    def param_names(self) -> list[str]:
        """Every parameter a trial suggests, in the order it suggests them."""
        names = [d.name for s in self.stats for d in s.dims]
        names += [s.use_param for s in self.stats if s.optional]
        return names + ([REPEAT] if self.repeat[0] < self.repeat[1] else [])


def build_space(search: SearchSpec, stats: StatsTable, seed: int = 42) -> SearchSpace:
    """Resolve the search spec against the stats table: which stats, and each bound's range."""
    entries = search.ops if search.ops is not None else _default_ops(search, stats)
    numeric = set(stats.numeric_keys())
    spaces = []
    for entry in entries:
        key = search_stat(entry)
        try:
            op = stats.op(entry.op)
        except KeyError as err:
            raise SpecError(f"search.ops: {err.args[0]}") from None
        if key not in numeric:
            raise SpecError(f"search.ops: {entry.op}.{key} is not a numeric stat; only numeric stats have thresholds")
        spaces.append(StatSpace(entry.op, op.params.model_dump(mode="json", exclude_defaults=True), key,
                                _dimensions(entry, key, stats.stat(key).astype(float)), entry.optional))
    return SearchSpace(tuple(spaces), search.repeat, search.budget, seed)


def _default_ops(search: SearchSpec, stats: StatsTable) -> list[ThresholdSearch]:
    numeric = set(stats.numeric_keys())
    entries = []
    for op in stats.ops:
        key = op.split_stat()
        if key not in numeric:
            continue
        values = stats.stat(key).astype(float)
        if values.min() == values.max():  # listed by the user, it is refused; by default, left out
            log.info("search: %s.%s has one value (%g) in the data: left out of the space", op.name, key, values.min())
            continue
        entries.append(ThresholdSearch(op=op.name, bounds=search.bounds, scale=search.scale, optional=search.optional))
    if not entries:
        raise SpecError("search: no OP of the spec has a numeric split stat (with two values or more) to put "
                        "thresholds on")
    return entries


def _dimensions(entry: ThresholdSearch, key: str, values: np.ndarray) -> tuple[Dimension, ...]:
    where = f"search: {entry.op}.{key}"
    if values.min() == values.max():
        raise SpecError(f"{where} has one value ({values.min():g}) in the data; nothing to search")
    if entry.scale == "percentile":
        lo, mid, hi = 0.0, 50.0, 100.0
    else:  # the median, not the midpoint: on a skewed stat the midpoint lies far above most values
        lo, mid, hi = float(values.min()), float(np.median(values)), float(values.max())
    suffix = "_pct" if entry.scale == "percentile" else ""
    dims = [Dimension(f"{key}.{side}{suffix}", key, side, entry.scale, low, high)
            for side, (low, high) in _ranges(entry, lo, mid, hi).items()]
    for d in dims:
        if (d.side == "min" and d.low > hi) or (d.side == "max" and d.high < lo):
            raise SpecError(f"{where}: the {d.side} range [{d.low:g}, {d.high:g}] lies "
                            f"{'above' if d.side == 'min' else 'below'} every "
                            f"{'percentile' if suffix else 'value'} [{lo:g}, {hi:g}]: every trial would keep nothing")
    if len(dims) == 2 and (dims[0].low > dims[1].low or dims[0].high > dims[1].high):
        raise SpecError(f"{where}: the min range [{dims[0].low:g}, {dims[0].high:g}] starts or ends above the max "
                        f"range [{dims[1].low:g}, {dims[1].high:g}], so the lower of a trial's two sorted bounds "
                        "could lie outside the min range; give a min range that starts and ends at most where the "
                        "max range does")
    dims = [d for d in dims if _searched(d, values, where)]
    if not dims:
        raise SpecError(f"{where}: each searched range gives one bound, which cuts nothing; nothing to search")
    return tuple(dims)


def _ranges(entry: ThresholdSearch, lo: float, mid: float, hi: float) -> dict[Literal["min", "max"], tuple[float, float]]:
    """Where each bound is drawn: the range given, else the whole scale ``[lo, hi]`` for a lone
    bound and, with both, up to the median ``mid`` for the min and from it for the max (module
    docstring), stretched where the other side's given range reaches past it (so that the min range
    never starts or ends above the max range). A trial's two draws are sorted, so overlapping ranges
    are fine."""
    both = entry.bounds == "both"
    ranges: dict[Literal["min", "max"], tuple[float, float]] = {}
    if entry.bounds in ("min", "both"):
        ranges["min"] = entry.min_range or (
            (min(lo, entry.max_range[0]), min(mid, entry.max_range[1])) if both and entry.max_range
            else (lo, mid if both else hi))
    if entry.bounds in ("max", "both"):
        ranges["max"] = entry.max_range or (
            (max(mid, entry.min_range[0]), max(hi, entry.min_range[1])) if both and entry.min_range
            else (mid if both else lo, hi))
    return ranges


def _searched(d: Dimension, values: np.ndarray, where: str) -> bool:
    """Whether a dimension gives more than one bound (a value range of one value, or a percentile
    range over tied values: a stat that is mostly zeros, whose median is its minimum).

    Flat stretches inside a range stay: with sorted draws the stretch of a tied minimum is where
    a recipe leaves the stat's lower end uncut. A range that gives one bound throughout is left
    out where that bound cuts nothing (the stat's minimum for ``min``, its maximum for ``max``),
    and refused otherwise.
    """
    percentile = d.scale == "percentile"
    first, last = (float(v) for v in np.percentile(values, [d.low, d.high])) if percentile else (d.low, d.high)
    if first != last:
        return True
    which = "every percentile of" if percentile else "every value in"
    if first != (values.min() if d.side == "min" else values.max()):
        raise SpecError(f"{where}: {which} the {d.side} range [{d.low:g}, {d.high:g}] gives the bound "
                        f"{first:g}: nothing to search there; widen the range")
    log.info("%s: %s left out of the space: %s [%g, %g] gives the bound %g, which cuts nothing",
             where, d.name, which, d.low, d.high, first)
    return False


def suggest_params(trial: optuna.Trial, space: SearchSpace) -> dict[str, Any]:
    """One point of the space, drawn with the trial's sampler."""
    params: dict[str, Any] = {}
    for s in space.stats:
        for d in s.dims:
            params[d.name] = trial.suggest_float(d.name, d.low, d.high)
        if s.optional:
            params[s.use_param] = trial.suggest_categorical(s.use_param, [True, False])
    if space.repeat[0] < space.repeat[1]:
        params[REPEAT] = trial.suggest_int(REPEAT, *space.repeat)
    return params


def suggest_recipe(trial: optuna.Trial, space: SearchSpace, stats: StatsTable) -> Recipe:
    """The trial's recipe: suggested bounds, percentiles turned into stat values of ``stats``."""
    return recipe_from_params(space, suggest_params(trial, space), stats, name=f"trial-{trial.number}")


def recipe_from_params(space: SearchSpace, params: Mapping[str, Any], stats: StatsTable, name: str) -> Recipe:
    """The recipe a point of the space stands for (an unused optional OP gets no condition).

    A stat's two draws are sorted: the smaller is its lower bound, the larger its upper bound.
    """
    conditions = []
    for s in space.stats:
        if s.optional and not params[s.use_param]:
            continue
        bounds: dict[str, float] = {}
        values = stats.stat(s.stat).astype(float)
        drawn = sorted(float(params[d.name]) for d in s.dims)  # dims are in the order min, max
        for d, v in zip(s.dims, drawn):
            bounds[d.side] = float(np.percentile(values, v)) if d.scale == "percentile" else v
        conditions.append(Condition.model_validate({"op": s.op, "stat": s.stat, "params": s.params, **bounds}))
    repeat = int(params.get(REPEAT, space.repeat[0]))
    sample_size = None if space.budget is None else max(1, space.budget // repeat)
    source = ", ".join(f"{k}={_fmt(v)}" for k, v in params.items())
    return Recipe(name=name, conditions=conditions, repeat=repeat, sample_size=sample_size, seed=space.seed,
                  source=f"search {source}")


def params_from_recipe(space: SearchSpace, recipe: Recipe, stats: StatsTable) -> dict[str, Any]:
    """The point of the space nearest to ``recipe`` (warm start).

    A bound the recipe leaves open becomes the end of the dimension that cuts least; values and
    percentiles are clipped into the dimension's range. Conditions on stats outside the space
    are dropped. An optional stat without a condition is left out. Where clipping or dropping
    changes the selection, the point's recipe selects another pool than ``recipe`` does: the
    warm start checks for that.
    """
    by_stat: dict[str, list[Any]] = {}
    for c in recipe.conditions:
        if c.stat is not None and c.values is None:
            by_stat.setdefault(c.stat, []).append(c)
    params: dict[str, Any] = {}
    for s in space.stats:
        conds = by_stat.get(s.stat, [])
        if s.optional:
            params[s.use_param] = bool(conds)
        values = np.sort(stats.stat(s.stat).astype(float))
        for d in s.dims:
            found = [getattr(c, d.side) for c in conds if getattr(c, d.side) is not None]
            if not found:
                params[d.name] = d.low if d.side == "min" else d.high
                continue
            bound = max(found) if d.side == "min" else min(found)
            point = _percentile_of(values, bound, d.side) if d.scale == "percentile" else bound
            params[d.name] = float(np.clip(point, d.low, d.high))
    if space.repeat[0] < space.repeat[1]:
        params[REPEAT] = int(np.clip(recipe.repeat, *space.repeat))
    return params


def _percentile_of(sorted_values: np.ndarray, value: float, side: str) -> float:
    """The percentile whose ``np.percentile`` bound keeps the same samples as ``value`` does.

    Inverse of linear interpolation on sorted values; on tied values a lower bound takes the
    first of the ties and an upper bound the last, nudged inward of float round-off, so the
    bound still keeps every tied sample.
    """
    n = len(sorted_values)
    s = sorted_values
    if side == "min":
        i = int(np.searchsorted(s, value, "left"))  # first position with a value >= bound
        if i == 0:
            return 0.0
        if i == n:
            return 100.0
        pos = i if s[i] == value else i - 1 + (value - s[i - 1]) / (s[i] - s[i - 1])
        return max(0.0, 100.0 * pos / (n - 1) - 1e-9)
    i = int(np.searchsorted(s, value, "right")) - 1  # last position with a value <= bound
    if i < 0:
        return 0.0
    if i == n - 1:
        return 100.0
    pos = i if s[i] == value else i + (value - s[i]) / (s[i + 1] - s[i])
    return min(100.0, 100.0 * pos / (n - 1) + 1e-9)


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def describe_space(space: SearchSpace) -> list[dict[str, Any]]:
    """One row per parameter: name, kind and range (for logs and the report)."""
    rows: list[dict[str, Any]] = []
    for s in space.stats:
        sorted_draws = len(s.dims) == 2 and s.dims[0].high > s.dims[1].low  # overlapping ranges: either bound
        rows += [{"param": d.name, "op": s.op, "kind": f"{'min or max, sorted' if sorted_draws else d.side} ({d.scale})",
                  "low": d.low, "high": d.high} for d in s.dims]
        if s.optional:
            rows.append({"param": s.use_param, "op": s.op, "kind": "use OP", "low": False, "high": True})
    if space.repeat[0] < space.repeat[1]:
        rows.append({"param": REPEAT, "op": "", "kind": "duplication", "low": space.repeat[0], "high": space.repeat[1]})
    return rows


def objective_names(search: SearchSpec) -> list[str]:
    """Names of the study's objectives, in order (``delta_pct``, then ``pool_size``)."""
    return ["delta_pct" if o == "delta" else "pool_size" for o in search.objectives]
